"""The UDF object and fused.load: folder, zip, .py, code, GitHub; catalog format round trips."""

from __future__ import annotations

import json
import subprocess
import zipfile
from pathlib import Path

import pytest

import fused
from fused import InvalidArgumentError, NotFoundError

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "udfs"


@fused.udf
def bare(a: int = 1):
    return a + 1


@fused.udf(name="Renamed", cache_max_age="24h", default_parameters={"a": 5})
def called(a: int = 1):
    return a * 2


def test_decorator_bare_and_called_keep_source_and_settings():
    assert bare.name == "bare" and bare.entrypoint == "bare"
    assert bare.code == '@fused.udf\ndef bare(a: int = 1):\n    return a + 1\n'
    assert called.name == "Renamed" and called.cache_max_age == "24h"
    assert called.parameters == {"a": 5} and fused.run(called) == 10
    assert [p for p in bare.signature.parameters] == ["a"]
    with pytest.raises(TypeError, match="unexpected keyword arguments: colour"):
        fused.udf(colour="red")


def test_udf_from_import_name():
    from fused import udf

    @udf
    def f():
        return "ok"

    assert fused.run(f) == "ok"


def test_to_directory_writes_the_catalog_format_and_loads_back(tmp_path):
    @fused.udf(headers=[{"module_name": "utils", "source_code": "def double(x):\n    return 2 * x\n"}])
    def with_utils(x: int = 2):
        import utils

        return utils.double(x)

    folder = with_utils.to_directory(tmp_path / "With_Utils")
    assert sorted(p.name for p in folder.iterdir()) == ["README.MD", "meta.json", "utils.py", "with_utils.py"]
    meta = json.loads((folder / "meta.json").read_text())
    step = meta["job_config"]["steps"][0]
    assert meta["version"] == "0.0.3" and step["type"] == "udf"
    assert step["udf"]["type"] == "geopandas_v2" and step["udf"]["source"] == "with_utils.py"
    assert step["udf"]["headers"] == [{"module_name": "utils", "source_file": "utils.py"}]
    assert (folder / "with_utils.py").read_text() == with_utils.code

    loaded = fused.load(folder)
    assert loaded.code == with_utils.code and loaded.name == "with_utils"
    assert fused.run(loaded, x=21) == 42
    assert loaded.utils.double(4) == 8  # header modules are attributes
    with pytest.raises(fused._errors.AlreadyExistsError, match="is not empty"):
        with_utils.to_directory(folder)
    with_utils.to_directory(folder, overwrite=True)


def test_to_file_zip_round_trip(tmp_path):
    target = hello_udf().to_file(tmp_path / "hello.zip")
    with zipfile.ZipFile(target) as zf:
        assert sorted(zf.namelist()) == ["Hello/Hello.py", "Hello/README.MD", "Hello/meta.json"]
    loaded = fused.load(str(target))
    assert loaded.name == "Hello" and fused.run(loaded, who="zip") == "hello zip"
    with pytest.raises(fused._errors.AlreadyExistsError, match="the file exists"):
        hello_udf().to_file(target)


def hello_udf():
    return fused.Udf(name="Hello", entrypoint="udf", code='@fused.udf\ndef udf(who: str = "you"):\n    return f"hello {who}"\n')


def test_module_level_names_are_attributes_and_fused_is_a_global():
    udf = fused.load('''
import json

GREETING = "hello"

@fused.udf
def udf(who: str = "you"):
    return f"{GREETING} {who}"

def helper():
    return json.dumps({"via": fused.__name__})
''')
    assert udf.GREETING == "hello"
    assert udf.helper() == '{"via": "fused"}'
    assert fused.run(udf) == "hello you"
    with pytest.raises(AttributeError, match="has no attribute or module-level name 'nope'"):
        udf.nope


@pytest.mark.parametrize(
    "code, message",
    [
        ("def f():\n    return 1\n", "No function decorated with @fused.udf"),
        ("@fused.udf\ndef a():\n    pass\n@fused.udf\ndef b():\n    pass\n",
         r"Several functions decorated with @fused.udf in code \(a, b\) and none is named 'udf'"),
        ("@fused.udf\ndef udf(:\n", "Cannot parse UDF code"),
    ],
)
def test_entrypoint_rule_errors(code, message):
    with pytest.raises(InvalidArgumentError, match=message):
        fused.load(code)


def test_several_udfs_the_one_named_udf_wins():
    udf = fused.load("@fused.udf\ndef other():\n    return 1\n\n@fused.udf\ndef udf():\n    return 2\n")
    assert udf.entrypoint == "udf" and fused.run(udf) == 2
    assert fused.run(udf.other) == 1  # the other UDF is an attribute too


def test_load_py_file_uses_its_stem_as_name(tmp_path):
    path = tmp_path / "My_Udf.py"
    path.write_text("@fused.udf\ndef udf(n: int = 1):\n    return n\n")
    udf = fused.load(str(path))
    assert udf.name == "My_Udf" and fused.run(udf, n="3") == 3


def test_examples_load_from_their_folders():
    names = sorted(p.name for p in EXAMPLES.iterdir() if (p / "meta.json").exists())
    assert "Hello_World" in names
    for name in names:
        udf = fused.load(EXAMPLES / name)
        assert udf.name == name


def _write_meta(folder: Path, udf_spec: dict, steps=None):
    folder.mkdir(parents=True, exist_ok=True)
    meta = {"version": "0.0.3", "job_config": {"version": "0.0.3", "name": None,
            "steps": steps if steps is not None else [{"type": "udf", "udf": udf_spec}], "metadata": None}}
    (folder / "meta.json").write_text(json.dumps(meta))


@pytest.mark.parametrize(
    "mutate, message",
    [
        (lambda f: (f / "meta.json").write_text("{not json"), "Invalid meta.json in .*: not JSON"),
        (lambda f: _write_meta(f, {}, steps=[]), "job_config.steps must hold exactly 1 step, found 0"),
        (lambda f: _write_meta(f, {}, steps=[{"type": "ingest"}]), "the step type must be 'udf', got 'ingest'"),
        (lambda f: _write_meta(f, {"type": "pandas_v9", "source": "x.py"}), "unsupported UDF type 'pandas_v9'"),
        (lambda f: _write_meta(f, {"name": "X"}), "has neither 'source' nor 'code'"),
        (lambda f: _write_meta(f, {"name": "X", "source": "X.py"}), "its source file 'X.py' is missing"),
        (lambda f: (_write_meta(f, {"name": "X", "source": "X.py", "headers": [{"module_name": "utils", "source_file": "utils.py"}]}),
                    (f / "X.py").write_text("@fused.udf\ndef udf():\n    return 1\n")),
         "header module file 'utils.py' is missing"),
    ],
)
def test_bad_folders_are_clear_errors(tmp_path, mutate, message):
    folder = tmp_path / "X"
    folder.mkdir()
    mutate(folder)
    with pytest.raises((InvalidArgumentError, NotFoundError), match=message):
        fused.load(folder)


def test_inline_code_in_meta_json(tmp_path):
    folder = tmp_path / "Inline"
    _write_meta(folder, {"name": "Inline", "code": "@fused.udf\ndef udf():\n    return 'inline'\n", "headers": []})
    assert fused.run(fused.load(folder)) == "inline"


def test_sticky_notes_and_widgets_are_never_executed(tmp_path):
    folder = tmp_path / "Note"
    _write_meta(folder, {"name": "Note", "source": "Note.py", "metadata": {"isNodeTemplate": True, "nodeTemplateType": "textbox"}})
    (folder / "Note.py").write_text("# A note\nraise SystemExit('executed!')\n")
    note = fused.load(folder)
    assert note.is_node_template and note.code.startswith("# A note")
    with pytest.raises(InvalidArgumentError, match="'Note' is a canvas textbox .* not a UDF"):
        fused.run(note)


def test_missing_paths_and_names_are_clear_errors(tmp_path):
    with pytest.raises(NotFoundError, match="no such file or directory"):
        fused.load(str(tmp_path / "missing.py"))
    with pytest.raises(NotFoundError, match="no such file or directory"):
        fused.load("./not/here/")
    with pytest.raises(NotFoundError, match="need a terrafuse server"):
        fused.load("someone@example.com/my_udf")
    with pytest.raises(InvalidArgumentError, match="only GitHub tree/blob URLs"):
        fused.load("https://example.com/udf.py")
    with pytest.raises(InvalidArgumentError, match="not a valid zip file"):
        (tmp_path / "bad.zip").write_text("nope")
        fused.load(str(tmp_path / "bad.zip"))


def test_collection_folder_names_its_udfs(tmp_path):
    canvas = tmp_path / "Canvas"
    canvas.mkdir()
    (canvas / "collection.json").write_text('{"version": "1.0.0", "name": "c"}')
    _write_meta(canvas / "First", {"name": "First", "code": "@fused.udf\ndef udf():\n    return 1\n"})
    with pytest.raises(InvalidArgumentError, match="is a canvas .*: load one of its UDFs: First"):
        fused.load(canvas)


def _git(cwd, *args):
    subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True,
                   env={"GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t", "GIT_COMMITTER_NAME": "t",
                        "GIT_COMMITTER_EMAIL": "t@t", "PATH": "/usr/bin:/bin", "HOME": str(cwd)})


def test_load_github_tree_url_from_a_mirror_with_utils(tmp_path):
    work = tmp_path / "work"
    common = work / "public" / "common"
    common.mkdir(parents=True)
    (common / "common.py").write_text("@fused.udf\ndef udf(n: int = 1):\n    return n\n")
    (common / "utils.py").write_text("def bounds_to_list(b):\n    return list(b)\n")
    _write_meta(common, {"name": "common", "source": "common.py",
                         "headers": [{"module_name": "utils", "source_file": "utils.py"}]})
    _git(work, "init", "-q", "-b", "main")
    _git(work, "add", ".")
    _git(work, "commit", "-qm", "common")
    sha = subprocess.run(["git", "rev-parse", "HEAD"], cwd=work, capture_output=True, text=True).stdout.strip()
    mirror = tmp_path / "mirror"
    (mirror / "fusedio").mkdir(parents=True)
    _git(tmp_path, "clone", "-q", "--bare", str(work), str(mirror / "fusedio" / "udfs.git"))

    fused.options.github_mirror = str(mirror)
    utils = fused.load(f"https://github.com/fusedio/udfs/tree/{sha[:7]}/public/common/").utils
    assert utils.bounds_to_list((1, 2)) == [1, 2]
    by_branch = fused.load("https://github.com/fusedio/udfs/tree/main/public/common/")
    assert fused.run(by_branch, n="5") == 5
    blob = fused.load(f"https://github.com/fusedio/udfs/blob/{sha}/public/common/common.py")
    assert blob.name == "common"
