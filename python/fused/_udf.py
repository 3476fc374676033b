"""The UDF object (``@fused.udf``) and the execution of UDF source code.

A :class:`Udf` keeps the exact source text it was made from, its entrypoint, header
modules (``utils``) and metadata. Calling it with parameters gives a copy with those
parameters bound, which ``fused.run`` accepts. Module-level names of its code and its header
modules are attributes of the object: ``fused.load(url).utils.fn``, ``common.to_gdf``.
"""

from __future__ import annotations

import __future__
import ast
import copy
import inspect
import json
import linecache
import os
import sys
import tempfile
import types
import zipfile
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

from fused._errors import AlreadyExistsError, InvalidArgumentError
from fused._hashing import function_source, hash_values

UDF_TYPE = "geopandas_v2"
META_VERSION = "0.0.3"


@dataclass(frozen=True)
class Header:
    """A module importable by name inside a UDF (``import utils``)."""

    module_name: str
    source_code: str
    source_file: str | None = None


class Udf:
    """A user defined function: code, entrypoint, header modules, metadata, bound parameters."""

    _is_fused_udf = True
    type = UDF_TYPE

    def __init__(
        self,
        *,
        name: str,
        code: str,
        entrypoint: str = "udf",
        function: Callable | None = None,
        headers: Sequence[Header] = (),
        metadata: dict | None = None,
        parameters: dict | None = None,
        cache_max_age: str | int | None = None,
        default_parameters: dict | None = None,
        schema: Any = None,
    ) -> None:
        self.name = name
        self.code = code
        self.entrypoint = entrypoint
        self.headers = list(headers)
        self.metadata = dict(metadata or {})
        self.parameters = dict(parameters or {})
        self.cache_max_age = cache_max_age
        self.default_parameters = dict(default_parameters or {})
        self.schema = schema
        self._function = function
        self._namespace: dict | None = function.__globals__ if function is not None else None
        self._modules: dict[str, types.ModuleType] | None = None
        self._plan = None  # built by fused._run on first run

    # -- identity ---------------------------------------------------------------------
    @property
    def hash(self) -> str:
        """Content hash of everything that defines the UDF's behaviour (code + headers)."""
        if "_hash" not in self.__dict__:
            self.__dict__["_hash"] = hash_values(
                self.code, self.entrypoint, [(h.module_name, h.source_code) for h in self.headers]
            )
        return self.__dict__["_hash"]

    @property
    def is_node_template(self) -> bool:
        """True for canvas sticky notes and widgets, which hold no Python to run."""
        return bool(self.metadata.get("isNodeTemplate"))

    @property
    def udf_type(self) -> str:
        """Run mode from ``fused:udfType``: ``"tile"`` or ``"file"`` (``auto`` is inferred)."""
        mode = self.metadata.get("fused:udfType", "auto")
        if mode in ("vector_tile", "raster"):
            return "tile"
        if mode == "auto" and not self.is_node_template:
            return "tile" if "bounds" in self.signature.parameters else "file"
        return "file"

    # -- code ---------------------------------------------------------------------------
    @property
    def function(self) -> Callable:
        """The entrypoint callable, executing the UDF's code on first use."""
        if self._function is None:
            if self.is_node_template:
                kind = self.metadata.get("nodeTemplateType", "note")
                raise InvalidArgumentError(
                    f"'{self.name}' is a canvas {kind} (isNodeTemplate), not a UDF: it has no code to run"
                )
            namespace, modules = execute_code(self.code, self.name, self.headers)
            entry = namespace.get(self.entrypoint)
            if entry is None:
                raise InvalidArgumentError(f"UDF '{self.name}' has no function named '{self.entrypoint}'")
            self._function = entry.function if isinstance(entry, Udf) else entry
            self._namespace, self._modules = namespace, modules
        return self._function

    @property
    def signature(self) -> inspect.Signature:
        return inspect.signature(self.function)

    @property
    def header_modules(self) -> dict[str, types.ModuleType]:
        if self._modules is None:
            self._modules = build_header_modules(self.headers)
        return self._modules

    @contextmanager
    def imports(self) -> Iterator[None]:
        """Make the header modules importable by name while the UDF runs."""
        if not self.headers:
            yield
            return
        with _modules_installed(self.header_modules):
            yield

    def __getattr__(self, name: str) -> Any:
        # Only reached for names that are not attributes: module-level names and headers.
        if name.startswith("__") or name in ("_function", "_namespace", "_modules"):
            raise AttributeError(name)
        if not self.is_node_template:
            self.function  # executes the code when needed
            if name in self.header_modules:
                return self.header_modules[name]
            if self._namespace is not None and name in self._namespace:
                return self._namespace[name]
        raise AttributeError(f"UDF '{self.name}' has no attribute or module-level name {name!r}")

    def __dir__(self) -> list[str]:
        names = set(super().__dir__())
        if self._namespace is not None:
            names |= {n for n in self._namespace if not n.startswith("_")}
        return sorted(names | {h.module_name for h in self.headers})

    # -- binding and running ----------------------------------------------------------
    def __call__(self, *args: Any, arg_list: Any = None, **parameters: Any) -> Any:
        """Return a copy of this UDF with ``parameters`` bound (``fused.run`` accepts it).

        With ``arg_list``, return a batch job config (one task per input) to start with
        ``.run_remote()`` or run here with ``.run_local()``.
        """
        if arg_list is not None:  # a batch job: .run_remote() / .run_local()
            from fused._jobs import UdfJobConfig

            if args:
                raise TypeError(f"UDF '{self.name}' got positional parameters and arg_list: pass one")
            return UdfJobConfig(self, arg_list, parameters)
        if args:
            names = [p.name for p in self.signature.parameters.values()
                     if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
            if len(args) > len(names):
                raise TypeError(f"UDF '{self.name}' takes {len(names)} positional parameters, got {len(args)}")
            for arg_name, value in zip(names, args):
                if arg_name in parameters:
                    raise TypeError(f"UDF '{self.name}' got parameter '{arg_name}' twice")
                parameters[arg_name] = value
        bound = copy.copy(self)
        bound.parameters = {**self.parameters, **parameters}
        return bound

    def map(self, arg_list: Any, /, **options: Any) -> Any:
        """Run this UDF once per input, in parallel: ``fused.submit(self, arg_list,
        collect=False, **options)``. Returns a :class:`fused.JobPool` (``.df()``, ``.collect()``)."""
        from fused._submit import submit

        options.setdefault("collect", False)
        return submit(self, arg_list, **options)

    def run_local(self, *args: Any, **parameters: Any) -> Any:
        """Run in this process: ``fused.run(self, engine="local", ...)``."""
        from fused._run import run

        return run(self, *args, engine="local", **parameters)

    def to_fused(self, *, public: bool = False) -> dict:
        """Save this UDF on the server at ``fused.options.base_url``; returns owner, name, version."""
        from fused import _remote

        return _remote.save_udf(self, public=public)

    def create_access_token(self, **settings: Any) -> Any:
        """Create a shared token (``fsh_...``) for this UDF as saved on the server.

        Settings: ``enabled``, ``cache``, ``cache_max_age``, ``scope`` ("public" or "team"),
        ``include_code``, ``metadata``.
        """
        from fused import _remote

        return _remote.create_access_token(self.name, **settings)

    # -- the catalog folder format -----------------------------------------------------
    def meta_json(self) -> dict:
        """Return the ``meta.json`` document of this UDF (format ``0.0.3``)."""
        metadata = {"fused:name": self.name, "fused:slug": self.name, "fused:udfType": "auto", "fused:id": None}
        metadata.update(self.metadata)
        return {
            "version": META_VERSION,
            "job_config": {
                "version": META_VERSION,
                "name": None,
                "steps": [{
                    "type": "udf",
                    "udf": {
                        "type": UDF_TYPE,
                        "name": self.name,
                        "entrypoint": self.entrypoint,
                        "parameters": _jsonable_parameters(self.parameters),
                        "metadata": metadata,
                        "source": f"{self.name}.py",
                        "headers": [{"module_name": h.module_name, "source_file": f"{h.module_name}.py"}
                                    for h in self.headers],
                    },
                }],
                "metadata": None,
            },
        }

    def _folder_files(self) -> dict[str, str]:
        description = self.metadata.get("fused:description", "")
        files = {
            f"{self.name}.py": self.code,
            "meta.json": json.dumps(self.meta_json(), indent=4) + "\n",
            "README.MD": f"<!--fused:readme-->\n{description}\n",
        }
        for h in self.headers:
            files[f"{h.module_name}.py"] = h.source_code
        return files

    def to_directory(self, where: str | os.PathLike | None = None, *, overwrite: bool = False) -> Path:
        """Write the catalog folder (``<Name>.py``, ``meta.json``, ``README.MD``, headers).

        The folder appears whole or not at all: it is written beside ``where`` and renamed.
        """
        target = Path(where if where is not None else self.name)
        if target.exists():
            if not overwrite and any(target.iterdir()):
                raise AlreadyExistsError(f"Cannot write UDF '{self.name}' to '{target}': the directory "
                                         "is not empty (pass overwrite=True to replace it)")
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
        for filename, text in self._folder_files().items():
            (tmp / filename).write_text(text)
        if target.exists():
            old = target.with_name(f".{target.name}.old{os.getpid()}")
            os.rename(target, old)
            os.rename(tmp, target)
            _rmtree(old)
        else:
            os.rename(tmp, target)
        return target

    def to_file(self, where: str | os.PathLike | None = None, *, overwrite: bool = False) -> Path:
        """Write the catalog folder as a ``.zip`` holding ``<Name>/...``, atomically."""
        target = Path(where if where is not None else f"{self.name}.zip")
        if target.exists() and not overwrite:
            raise AlreadyExistsError(f"Cannot write UDF '{self.name}' to '{target}': the file exists "
                                     "(pass overwrite=True to replace it)")
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", dir=target.parent)
        try:
            with os.fdopen(fd, "wb") as raw, zipfile.ZipFile(raw, "w", zipfile.ZIP_DEFLATED) as zf:
                for filename, text in self._folder_files().items():
                    zf.writestr(f"{self.name}/{filename}", text)
            os.replace(tmp, target)
        except BaseException:
            os.unlink(tmp)
            raise
        return target

    def __repr__(self) -> str:
        bound = f" {self.parameters}" if self.parameters else ""
        return f"<Udf {self.name!r} entrypoint={self.entrypoint!r}{bound}>"


def _jsonable_parameters(parameters: dict) -> dict:
    try:
        json.dumps(parameters)
        return dict(parameters)
    except TypeError:
        return {k: v for k, v in parameters.items() if _is_jsonable(v)}


def _is_jsonable(value: Any) -> bool:
    try:
        json.dumps(value)
        return True
    except TypeError:
        return False


def _rmtree(path: Path) -> None:
    import shutil

    shutil.rmtree(path, ignore_errors=True)


# -- the decorator -------------------------------------------------------------------------
def udf(
    fn: Callable | None = None,
    *,
    schema: Any = None,
    name: str | None = None,
    cache_max_age: str | int | None = None,
    default_parameters: dict | None = None,
    headers: Sequence[str | Header | dict] | None = None,
    **kwargs: Any,
) -> Any:
    """Turn a function into a UDF. Works bare (``@fused.udf``) and called (``@fused.udf(...)``).

    Parameters
    ----------
    fn : callable
        The function, when used bare.
    schema : optional
        Accepted for compatibility; terrafuse infers output schemas.
    name : str, optional
        Name of the UDF; defaults to the function's name.
    cache_max_age : str or int, optional
        How long results of ``fused.run`` stay cached (default 90 days), e.g. ``"24h"``.
    default_parameters : dict, optional
        Parameter values bound to the UDF apart from its signature.
    headers : list, optional
        Modules importable inside the UDF by name: paths to ``.py`` files, or
        ``{"module_name", "source_code"}`` dicts.

    Returns
    -------
    Udf
    """
    unknown = set(kwargs) - {"instance_type", "engine", "disk_size_gb", "region"}
    if unknown:
        raise TypeError(f"fused.udf() got unexpected keyword arguments: {', '.join(sorted(unknown))}")
    if cache_max_age is not None:
        from fused._duration import parse_duration

        parse_duration(cache_max_age)  # validate now, not at the first run

    def decorate(function: Callable) -> Udf:
        if isinstance(function, Udf):
            return function
        if not callable(function):
            raise TypeError(f"@fused.udf decorates a function, got {type(function).__name__}")
        return Udf(
            name=name or function.__name__,
            code=function_source(function),
            entrypoint=function.__name__,
            function=function,
            headers=[_to_header(h) for h in headers or ()],
            parameters=default_parameters,
            cache_max_age=cache_max_age,
            default_parameters=default_parameters,
            schema=schema,
        )

    return decorate(fn) if fn is not None else decorate


def _to_header(header: str | Header | dict) -> Header:
    if isinstance(header, Header):
        return header
    if isinstance(header, dict):
        return Header(header["module_name"], header.get("source_code", ""), header.get("source_file"))
    path = Path(header)
    if not path.is_file():
        raise FileNotFoundError(f"Header module file '{header}' does not exist")
    return Header(path.stem, path.read_text(), path.name)


# -- executing code ------------------------------------------------------------------------
_compiled: dict[tuple[str, str], types.CodeType] = {}
# Annotations stay strings (resolved by fused._coerce), so code that annotates with names
# imported elsewhere still loads.
_FLAGS = __future__.annotations.compiler_flag


def compile_cached(code: str, filename: str) -> types.CodeType:
    """Compile ``code`` once per (text, filename) and register it for tracebacks and inspect."""
    key = (hash_values(code), filename)
    compiled = _compiled.get(key)
    if compiled is None:
        linecache.cache[filename] = (len(code), None, code.splitlines(True), filename)
        compiled = _compiled[key] = compile(code, filename, "exec", flags=_FLAGS, dont_inherit=True)
    return compiled


def execute_code(code: str, name: str, headers: Sequence[Header] = ()) -> tuple[dict, dict]:
    """Execute UDF source in a fresh module namespace where ``fused`` is already imported.

    Returns the namespace and the header modules.
    """
    import fused

    modules = build_header_modules(headers)
    module = types.ModuleType(f"fused_udf_{name}")
    # The file name carries the code's hash: two versions of a UDF with the same name keep
    # their own source for tracebacks and for the keys of the @fused.cache functions inside.
    filename = f"<udf {name} {hash_values(code)[:8]}>"
    module.__dict__.update({"fused": fused, "__file__": filename})
    with _modules_installed(modules):
        exec(compile_cached(code, filename), module.__dict__)
    return module.__dict__, modules


def build_header_modules(headers: Sequence[Header]) -> dict[str, types.ModuleType]:
    """Execute header modules in order; each can import the ones before it."""
    import fused

    modules: dict[str, types.ModuleType] = {}
    for header in headers:
        module = types.ModuleType(header.module_name)
        filename = f"<udf header {header.module_name} {hash_values(header.source_code)[:8]}>"
        module.__dict__.update({"fused": fused, "__file__": filename})
        with _modules_installed(modules):
            exec(compile_cached(header.source_code, module.__file__), module.__dict__)
        modules[header.module_name] = module
    return modules


@contextmanager
def _modules_installed(modules: dict[str, types.ModuleType]) -> Iterator[None]:
    """Put ``modules`` into ``sys.modules`` for the duration, restoring what was there."""
    saved = {name: sys.modules.get(name) for name in modules}
    sys.modules.update(modules)
    try:
        yield
    finally:
        for name, previous in saved.items():
            if previous is None:
                sys.modules.pop(name, None)
            else:
                sys.modules[name] = previous


# -- entrypoint rule -----------------------------------------------------------------------
def find_entrypoint(code: str, origin: str) -> str:
    """Return the name of the UDF function in ``code`` (the rule of the Fused SDK).

    Exactly one top-level function decorated with ``@fused.udf`` (or ``@udf``) is the
    entrypoint; among several, the one named ``udf`` wins; none is an error.
    """
    try:
        tree = ast.parse(code)
    except SyntaxError as e:
        raise InvalidArgumentError(f"Cannot parse UDF code from {origin}: {e.msg} (line {e.lineno})") from None
    decorated = [node.name for node in tree.body
                 if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))
                 and any(_is_udf_decorator(d) for d in node.decorator_list)]
    if len(decorated) == 1:
        return decorated[0]
    if not decorated:
        raise InvalidArgumentError(f"No function decorated with @fused.udf in {origin}")
    if "udf" in decorated:
        return "udf"
    raise InvalidArgumentError(
        f"Several functions decorated with @fused.udf in {origin} ({', '.join(decorated)}) "
        "and none is named 'udf': name the entrypoint 'udf'"
    )


def _is_udf_decorator(node: ast.expr) -> bool:
    if isinstance(node, ast.Call):
        node = node.func
    if isinstance(node, ast.Name):
        return node.id == "udf"
    return isinstance(node, ast.Attribute) and node.attr == "udf"
