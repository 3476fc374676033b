"""``fused.load``: a UDF from a folder, a ``.zip``, a ``.py`` file, code, or a GitHub URL.

Folders follow the public catalog's format (``meta.json`` version ``0.0.3`` with one ``udf``
step; see docs/sdk.md). Canvas sticky notes and widgets load as node templates and are
never executed.
"""

from __future__ import annotations

import json
import os
import zipfile
from pathlib import Path, PurePosixPath
from typing import Any, Callable

from fused._errors import InvalidArgumentError, NotFoundError
from fused._udf import Header, Udf, execute_code, find_entrypoint


def load(url_or_udf: Any, /, *, cache_key: Any = None) -> Udf:
    """Load a UDF.

    Parameters
    ----------
    url_or_udf : str, path or Udf
        One of: a folder in the catalog format (``meta.json``), a ``.zip`` of one, a ``.py``
        file, Python code holding a ``@fused.udf`` function, or a GitHub URL
        (``https://github.com/<owner>/<repo>/tree/<ref>/<path>`` or ``.../blob/<ref>/<file>.py``,
        ``<ref>`` a branch, tag or commit). A :class:`Udf` is returned as it is.
    cache_key : optional
        Accepted for compatibility.

    Returns
    -------
    Udf

    Raises
    ------
    NotFoundError
        When the path, repository, ref or saved name does not exist.
    InvalidArgumentError
        When ``meta.json`` or the code is malformed, or the entrypoint is ambiguous.
    """
    if isinstance(url_or_udf, Udf):
        return url_or_udf
    if isinstance(url_or_udf, os.PathLike):
        return _load_path(Path(url_or_udf))
    if not isinstance(url_or_udf, str) or not url_or_udf.strip():
        raise InvalidArgumentError(f"fused.load expects a path, URL, code or UDF, got {url_or_udf!r}")
    text = url_or_udf
    if "\n" in text or text.lstrip().startswith(("@", "def ", "import ", "from ")):
        return load_code(text)
    if _is_github(text):
        from fused import _github
        from fused._options import data_home, options

        return _load_path(_github.fetch(text, cache_dir=data_home() / "github", mirror=options.github_mirror))
    if text.startswith(("http://", "https://")):
        raise InvalidArgumentError(f"Cannot load {text!r}: only GitHub tree/blob URLs are supported")
    path = Path(os.path.expanduser(text))
    if path.exists():
        return _load_path(path)
    if text.endswith((".py", ".zip", "/")) or text.startswith(("/", "./", "../", "~")):
        raise NotFoundError(f"Cannot load UDF from '{text}': no such file or directory")
    from fused._options import options

    if options.base_url:
        from fused import _remote

        if text.startswith(("fsh_", "UDF_")):
            return _remote.load_shared(text)
        return _remote.load_saved(text)
    raise NotFoundError(
        f"Cannot load UDF {text!r}: it is not a local path, and saved UDFs, tokens and "
        "'UDF_<Name>' public names need a terrafuse server (set fused.options.base_url)"
    )


def _is_github(text: str) -> bool:
    return text.startswith(("https://github.com/", "http://github.com/", "github.com/",
                            "https://raw.githubusercontent.com/"))


def github_document(url: str) -> dict:
    """The UDF at a GitHub URL, read but never executed, as the JSON ``POST /udfs`` takes.

    What the server's ``POST /udfs/github`` saves (it runs this in a worker): the same fetch
    and folder reading as ``fused.load(url)``, without running the UDF's module code.
    """
    from fused import _github
    from fused._options import data_home, options

    if not isinstance(url, str) or not _is_github(url.strip()):
        raise InvalidArgumentError(
            f"not a GitHub URL: {url!r} (expected https://github.com/<owner>/<repo>/tree/<ref>/<folder>)")
    path = _github.fetch(url.strip(), cache_dir=data_home() / "github", mirror=options.github_mirror)
    spec = _path_spec(path, origin=url.strip())  # errors name the URL, not the server's cache
    return {
        "name": spec["name"], "code": spec["code"], "entrypoint": spec["entrypoint"],
        "headers": [{"module_name": h.module_name, "source_code": h.source_code} for h in spec["headers"]],
        "metadata": {**spec["metadata"], "fused:source": url.strip()},
    }


def _load_path(path: Path) -> Udf:
    return _from_spec(_path_spec(path))


def _from_spec(spec: dict) -> Udf:
    if spec["metadata"].get("isNodeTemplate"):
        # Sticky notes and widgets hold markdown or JSON, not Python: keep, never execute.
        return Udf(name=spec["name"], code=spec["code"], entrypoint=spec["entrypoint"], metadata=spec["metadata"])
    return _from_code(**spec)


def _path_spec(path: Path, origin: str | None = None) -> dict:
    """A folder's, zip's or .py file's UDF as ``_from_code`` arguments, read but not executed."""
    if path.is_dir():
        return _directory_spec(path, origin)
    if path.suffix == ".zip":
        return _zip_spec(path)
    if path.suffix == ".py":
        return _code_spec(path.read_text(), name=path.stem, origin=origin or str(path))
    if not path.exists():
        raise NotFoundError(f"Cannot load UDF from '{path}': no such file or directory")
    raise InvalidArgumentError(f"Cannot load UDF from '{path}': expected a folder, a .zip or a .py file")


def _code_spec(code: str, *, name: str | None, origin: str) -> dict:
    entrypoint = find_entrypoint(code, origin)
    return {"code": code, "name": name or entrypoint, "entrypoint": entrypoint, "headers": [], "metadata": {},
            "parameters": {}}


def load_code(code: str, *, name: str | None = None, origin: str = "code") -> Udf:
    """Load the ``@fused.udf`` function of ``code``, executing its module-level statements."""
    return _from_code(**_code_spec(code, name=name, origin=origin))


def _from_code(*, code: str, name: str, entrypoint: str, headers=(), metadata=None, parameters=None) -> Udf:
    namespace, modules = execute_code(code, name, headers)
    entry = namespace.get(entrypoint)
    if entry is None:
        raise InvalidArgumentError(f"UDF '{name}': its code defines no function named '{entrypoint}'")
    udf = Udf(
        name=name,
        code=code,
        entrypoint=entrypoint,
        function=entry.function if isinstance(entry, Udf) else entry,
        headers=headers,
        metadata=metadata,
        parameters=parameters,
        cache_max_age=getattr(entry, "cache_max_age", None),
    )
    udf._namespace, udf._modules = namespace, modules
    return udf


def load_directory(path: Path) -> Udf:
    """Load a catalog folder: ``meta.json`` + ``<Name>.py`` (+ header modules)."""
    return _from_spec(_directory_spec(path))


def _directory_spec(path: Path, origin: str | None = None) -> dict:
    def read(name: str) -> str | None:
        file = path / name
        return file.read_text() if file.is_file() else None

    if (path / "collection.json").is_file() and not (path / "meta.json").is_file():
        members = sorted(p.name for p in path.iterdir() if (p / "meta.json").is_file())
        raise InvalidArgumentError(
            f"'{origin or path}' is a canvas (collection.json): load one of its UDFs: {', '.join(members) or 'none'}"
        )
    return _folder_spec(read, origin=origin or str(path), default_name=path.name)


def load_zip(path: Path) -> Udf:
    """Load a ``.zip`` holding a catalog folder, flat or under one top folder."""
    return _from_spec(_zip_spec(path))


def _zip_spec(path: Path) -> dict:
    try:
        archive = zipfile.ZipFile(path)
    except zipfile.BadZipFile:
        raise InvalidArgumentError(f"Cannot load UDF from '{path}': not a valid zip file") from None
    with archive:
        names = [n for n in archive.namelist() if not n.endswith("/")]
        meta = [n for n in names if PurePosixPath(n).name == "meta.json"]
        prefix = str(PurePosixPath(min(meta, key=len)).parent) if meta else ""
        prefix = "" if prefix == "." else prefix + "/"
        files = {n[len(prefix):]: n for n in names if n.startswith(prefix)}

        def read(name: str) -> str | None:
            member = files.get(name)
            return archive.read(member).decode() if member else None

        return _folder_spec(read, origin=str(path), default_name=prefix.rstrip("/") or path.stem)


def _folder_spec(read: Callable[[str], str | None], *, origin: str, default_name: str) -> dict:
    meta_text = read("meta.json")
    if meta_text is None:
        code = read(default_name + ".py")
        if code is None:
            raise NotFoundError(f"Cannot load UDF from '{origin}': no meta.json (and no {default_name}.py)")
        return _code_spec(code, name=default_name, origin=f"{origin}/{default_name}.py")
    try:
        meta = json.loads(meta_text)
    except ValueError as e:
        raise InvalidArgumentError(f"Invalid meta.json in '{origin}': not JSON ({e})") from None
    udf_spec = _udf_spec(meta, origin)
    name = udf_spec.get("name") or default_name
    metadata = udf_spec.get("metadata") or {}
    if not isinstance(metadata, dict):
        raise InvalidArgumentError(f"Invalid meta.json in '{origin}': udf.metadata must be an object")

    code = udf_spec.get("code")
    if code is None:
        source = udf_spec.get("source")
        if not source:
            raise InvalidArgumentError(f"Invalid meta.json in '{origin}': the udf has neither 'source' nor 'code'")
        code = read(source)
        if code is None:
            raise NotFoundError(f"Cannot load UDF '{name}' from '{origin}': its source file '{source}' is missing")

    if metadata.get("isNodeTemplate"):
        return {"code": code, "name": name, "entrypoint": udf_spec.get("entrypoint", "udf"), "headers": [],
                "metadata": metadata, "parameters": {}}

    headers = []
    for header in udf_spec.get("headers") or []:
        if not isinstance(header, dict) or "module_name" not in header:
            raise InvalidArgumentError(f"Invalid meta.json in '{origin}': each header needs a 'module_name'")
        source_code = header.get("source_code")
        if source_code is None:
            source_file = header.get("source_file") or f"{header['module_name']}.py"
            source_code = read(source_file)
            if source_code is None:
                raise NotFoundError(
                    f"Cannot load UDF '{name}' from '{origin}': header module file '{source_file}' is missing"
                )
        headers.append(Header(header["module_name"], source_code, header.get("source_file")))

    entrypoint = find_entrypoint(code, f"'{origin}'")
    return {"code": code, "name": name, "entrypoint": entrypoint, "headers": headers, "metadata": metadata,
            "parameters": udf_spec.get("parameters") or {}}


def _udf_spec(meta: Any, origin: str) -> dict:
    def bad(problem: str) -> InvalidArgumentError:
        return InvalidArgumentError(f"Invalid meta.json in '{origin}': {problem}")

    if not isinstance(meta, dict) or not isinstance(meta.get("job_config"), dict):
        raise bad("missing 'job_config'")
    steps = meta["job_config"].get("steps")
    if not isinstance(steps, list) or len(steps) != 1:
        raise bad(f"job_config.steps must hold exactly 1 step, found {len(steps) if isinstance(steps, list) else 0}")
    step = steps[0]
    if not isinstance(step, dict) or step.get("type") != "udf":
        raise bad(f"the step type must be 'udf', got {step.get('type') if isinstance(step, dict) else step!r}")
    spec = step.get("udf")
    if not isinstance(spec, dict):
        raise bad("the step has no 'udf' object")
    if spec.get("type", "geopandas_v2") != "geopandas_v2":
        raise bad(f"unsupported UDF type {spec.get('type')!r} (expected 'geopandas_v2')")
    return spec


__all__ = ["load", "load_code", "load_directory", "load_zip"]
