"""The package as users install it: dependencies by use, a quiet `import tfmodels`, and a wheel that installs.

`pyproject.toml` is the single source of the metadata. The core install is the model library (no TFX, Beam,
tf_keras or TF Serving's API); `tfmodels[serving]` adds the server, `tfmodels[pipeline]` the TFX pipeline. These
tests run at both ends of the supported range (`make test` in .venv, `make test-newest` in .venv-newest).
"""

import ast
import importlib.metadata
import json
import os
import pathlib
import subprocess
import sys
import tarfile
import zipfile

import pytest
from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet
from packaging.utils import canonicalize_name
from packaging.version import Version

ROOT = pathlib.Path(__file__).resolve().parents[1]
OUR_PACKAGES = ("tfmodels", "tfx_pipeline", "serving")
# What only the pipeline or the server may bring in; none of it is a core dependency or imported by `tfmodels`.
PIPELINE_ONLY = (
    "tfx",
    "apache-beam",
    "tf-keras",
    "kfp-pipeline-spec",
    "tensorflow-serving-api",
    "waitress",
)
PIPELINE_MODULES = ("tfx", "apache_beam", "tf_keras", "tensorflow_serving", "tensorflow_transform")


def _pyproject():
    text = (ROOT / "pyproject.toml").read_text(encoding="utf-8")
    try:
        import tomllib  # Python >= 3.11
    except ModuleNotFoundError:
        import tomli as tomllib  # Python 3.10 (a pip/pytest dependency)
    return tomllib.loads(text)["project"]


def _requirements(extras=()):
    """The core requirements plus those of ``extras``, with `tfmodels[...]` self-references expanded."""
    project = _pyproject()
    found, pending, seen = [], [None, *extras], set()
    while pending:
        extra = pending.pop()
        if extra in seen:
            continue
        seen.add(extra)
        for line in (
            project["dependencies"] if extra is None else project["optional-dependencies"][extra]
        ):
            requirement = Requirement(line)
            if canonicalize_name(requirement.name) == "tfmodels":
                pending.extend(requirement.extras)
            else:
                found.append(requirement)
    return found


def _names(requirements):
    return {canonicalize_name(r.name) for r in requirements}


def test_the_core_install_is_the_model_library_and_the_extras_add_pipeline_and_server():
    core = _names(_requirements())
    assert {"tensorflow", "keras", "numpy", "safetensors", "gguf"} <= core
    assert not core & set(PIPELINE_ONLY), core & set(PIPELINE_ONLY)
    serving = _names(_requirements(["serving"])) - core
    assert {"grpcio", "tensorflow-serving-api", "waitress"} <= serving
    assert not serving & {"tfx", "apache-beam", "tf-keras"}
    pipeline = _names(_requirements(["pipeline"]))
    assert {"tfx", "apache-beam", "kfp-pipeline-spec", "tf-keras", "tensorboard"} <= pipeline
    assert serving <= pipeline  # the pipeline starts the server for infra-validation
    assert pipeline | serving <= _names(_requirements(["all"]))


@pytest.mark.parametrize(
    "name, oldest, newest", [("tensorflow", "2.16.2", "2.21.0"), ("keras", "3.12.4", "3.15.1")]
)
def test_ranges_take_both_tested_ends_and_nothing_newer(name, oldest, newest):
    specifier = next(r.specifier for r in _requirements() if r.name == name)
    assert Version(oldest) in specifier and Version(newest) in specifier
    major, minor, _ = Version(newest).release
    assert Version(f"{major}.{minor + 1}.0") not in specifier  # untested minors are not claimed


def test_python_range_and_classifiers_name_the_tested_pythons():
    project = _pyproject()
    python = SpecifierSet(project["requires-python"])
    assert all(
        Version(v) in python for v in ("3.10.0", "3.12.0", "3.13.0")
    )  # TF 2.21 has 3.10-3.13 wheels
    assert Version("3.14.0") not in python and Version("3.9.18") not in python
    tested = {
        c.rsplit(" :: ", 1)[-1]
        for c in project["classifiers"]
        if c.startswith("Programming Language :: Python :: 3.")
    }
    assert tested == {"3.10", "3.12"}  # the two ends that make test runs


def _third_party_imports(package):
    """``{top-level module: [files]}`` imported by ``package`` at module level (not inside functions);
    ``tfmodels`` leaves out its runnable examples (``tfmodels/examples``, checked on their own)."""
    found = {}
    for path in sorted((ROOT / package).rglob("*.py")):
        if package == "tfmodels" and "examples" in path.relative_to(ROOT / package).parts:
            continue
        for node in ast.parse(path.read_text(encoding="utf-8")).body:
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and not node.level:
                names = [node.module]
            else:
                continue
            for name in names:
                top = name.split(".")[0]
                if (
                    top not in sys.stdlib_module_names
                    and top not in OUR_PACKAGES
                    and top != "__future__"
                ):
                    found.setdefault(top, []).append(str(path.relative_to(ROOT)))
    return found


def _closure(requirements):
    """The installed distributions that ``requirements`` pull in, transitively (markers evaluated here)."""
    done, pending = set(), [(r, ()) for r in requirements]
    while pending:
        requirement, extras = pending.pop()
        name = canonicalize_name(requirement.name)
        if name in done:
            continue
        try:
            lines = importlib.metadata.requires(requirement.name) or []
        except importlib.metadata.PackageNotFoundError:
            continue
        done.add(name)
        for line in lines:
            child = Requirement(line)
            if child.marker is None or any(
                child.marker.evaluate({"extra": e}) for e in (*requirement.extras, "")
            ):
                pending.append((child, ()))
    return done


def _module_owners():
    """``{top-level module: [distributions]}`` for everything installed (Python 3.10's
    ``packages_distributions`` reads only top_level.txt, which meson-built numpy lacks: read RECORD).
    """
    owners = {}
    for dist in importlib.metadata.distributions():
        tops = {pathlib.PurePosixPath(str(f)).parts[0] for f in dist.files or ()}
        for top in tops:
            if top.endswith((".dist-info", ".egg-info", ".data", ".pth")) or top in (
                "..",
                "__pycache__",
            ):
                continue
            owners.setdefault(top.removesuffix(".py"), []).append(dist.metadata["Name"])
    return owners


@pytest.mark.parametrize(
    "package, extras",
    [("tfmodels", ()), ("tfmodels/examples", ("examples",)), ("serving", ("serving",))],
)
def test_module_level_imports_come_with_the_install(package, extras):
    """`pip install tfmodels` (or `tfmodels[serving]`) brings every package its modules import at load time;
    optional ones (tensorflow_text, pandas, ...) are imported inside the functions that need them.
    """
    provided = _closure(_requirements(extras))
    distributions = _module_owners()
    missing = {
        module: files[:3]
        for module, files in _third_party_imports(package).items()
        if not {canonicalize_name(d) for d in distributions.get(module, [])} & provided
    }
    assert not missing, f"imported but not a dependency of {package}{list(extras) or ''}: {missing}"


# A user's shell, not the test process: importing tfx_pipeline (other tests in this worker do) sets
# TF_USE_LEGACY_KERAS=1, which makes TensorFlow itself import tf_keras in any child that inherits it.
_NOT_A_USERS_ENV = ("TF_CPP_MIN_LOG_LEVEL", "PYTHONWARNINGS", "TF_USE_LEGACY_KERAS")


def _run(args, **kwargs):
    env = {k: v for k, v in os.environ.items() if k not in _NOT_A_USERS_ENV}
    return subprocess.run(args, capture_output=True, text=True, timeout=600, env=env, **kwargs)


def test_import_tfmodels_prints_nothing_and_imports_no_pipeline():
    script = f"import sys, tfmodels; print(*[m for m in {PIPELINE_MODULES!r} if m in sys.modules])"
    done = _run(
        [
            sys.executable,
            "-W",
            "always::DeprecationWarning",
            "-W",
            "always::FutureWarning",
            "-c",
            script,
        ],
        cwd=ROOT,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.strip() == "", f"tfmodels imported {done.stdout.strip()}"
    assert done.stderr == "", done.stderr[-3000:]


# Imports every module of the package with every warning recorded; prints the deprecation warnings raised from our
# own files and the pipeline modules that got imported.
_WALK = """
import importlib, json, pkgutil, sys, warnings
warnings.simplefilter("always")
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    import tfmodels
    for module in pkgutil.walk_packages(tfmodels.__path__, "tfmodels."):
        importlib.import_module(module.name)
ours = [f"{w.filename}:{w.lineno}: {w.category.__name__}: {w.message}" for w in caught
        if issubclass(w.category, (DeprecationWarning, FutureWarning)) and "/tfmodels/" in w.filename]
print(json.dumps({"ours": ours, "pipeline": [m for m in %r if m in sys.modules]}))
"""


def test_no_module_of_tfmodels_warns_of_deprecation_or_needs_the_pipeline():
    done = _run([sys.executable, "-c", _WALK % (PIPELINE_MODULES,)], cwd=ROOT)
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result == {"ours": [], "pipeline": []}, result


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """``python -m build`` of the repository: (sdist, wheel)."""
    out = tmp_path_factory.mktemp("dist")
    done = _run([sys.executable, "-m", "build", "--no-isolation", "--outdir", str(out), str(ROOT)])
    assert done.returncode == 0, (done.stdout + done.stderr)[-3000:]
    return next(out.glob("tfmodels-*.tar.gz")), next(out.glob("tfmodels-*.whl"))


def test_wheel_holds_the_packages_data_and_metadata_and_no_repository_folders(built):
    sdist, wheel = built
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
        info = next(n.split("/")[0] for n in names if n.split("/")[0].endswith(".dist-info"))
        metadata = archive.read(f"{info}/METADATA").decode()
        entry_points = archive.read(f"{info}/entry_points.txt").decode()
    assert {n.split("/")[0] for n in names} == {
        *OUR_PACKAGES,
        info,
    }  # no tests/, notebooks/, bench/, tools/
    assert "tfmodels/models/transformer/vocab/bible_en.txt" in names  # package data
    import tfmodels

    assert info == f"tfmodels-{tfmodels.__version__}.dist-info"
    fields = [line.split(": ", 1) for line in metadata.splitlines() if ": " in line]
    core = [value for key, value in fields if key == "Requires-Dist" and "extra ==" not in value]
    assert _names(Requirement(r) for r in core) == _names(_requirements())
    assert {"pipeline", "serving", "all", "test"} <= {
        value for key, value in fields if key == "Provides-Extra"
    }
    assert SpecifierSet(dict(fields)["Requires-Python"]) == SpecifierSet(
        _pyproject()["requires-python"]
    )
    assert "tfmodels-serve = serving.server:main" in entry_points
    assert "tfmodels-pipeline = tfx_pipeline.__main__:main" in entry_points
    with tarfile.open(sdist) as archive:
        top = {
            pathlib.PurePosixPath(n).parts[1]
            for n in archive.getnames()
            if len(pathlib.PurePosixPath(n).parts) > 1
        }
    assert {"pyproject.toml", "README.md", *OUR_PACKAGES} <= top
    assert not top & {"tests", "notebooks", "bench", "tools", "docs"}, top


# The README quickstart on a tiny random BERT (its own WordPiece vocabulary): fit, .keras save and reload.
QUICKSTART = """
import os, tempfile
import keras, numpy as np, tensorflow as tf
from tfmodels import BertClassifier, BertConfig, BertEncoder
from tfmodels.text import BertPreprocessor, BertTokenizer

directory = tempfile.mkdtemp()
vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "good", "bad", "movie", "great", "awful", "fun", "boring"]
with open(os.path.join(directory, "vocab.txt"), "w") as f:
    f.write("\\n".join(vocab) + "\\n")
encoder = BertEncoder(BertConfig(vocab_size=len(vocab), hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                                 intermediate_size=32, max_position_embeddings=32))
preprocess = BertPreprocessor(
    BertTokenizer.from_vocab_file(os.path.join(directory, "vocab.txt"), lowercase=True), sequence_length=16)
model = BertClassifier(encoder, num_classes=2)
model.compile(optimizer=keras.optimizers.AdamW(1e-2), jit_compile=True)
texts, labels = ["good movie", "great fun", "bad movie", "awful boring"] * 8, [1, 1, 0, 0] * 8
ds = tf.data.Dataset.from_tensor_slices((texts, labels)).batch(8).map(lambda x, y: (preprocess(x), y))
losses = model.fit(ds, epochs=3, verbose=0).history["loss"]
path = os.path.join(directory, "imdb.keras")
model.save(path)
x = preprocess(tf.constant(["good fun", "awful movie"]))
np.testing.assert_allclose(keras.models.load_model(path).predict(x, verbose=0), model.predict(x, verbose=0),
                           atol=1e-5)
assert losses[-1] < losses[0], losses
print("quickstart ok")
"""


def _find_python(version):
    done = _run(["bash", "-c", f". tools/find_python.sh && find_python {version}"], cwd=ROOT)
    return done.stdout.strip() if done.returncode == 0 else None


@pytest.mark.skipif(
    sys.version_info < (3, 12),
    reason="the newest end (make test-newest) installs the wheel in a fresh 3.12 venv",
)
def test_the_wheel_installs_in_a_fresh_python_312_venv_without_the_pipeline_and_runs(
    built, tmp_path
):
    """`pip install tfmodels-*.whl` from the newest end's wheelhouse (offline: the TFX set is not there, so a
    dependency on it could not install), then `import tfmodels`, the README quickstart and a causal-LM generate.
    """
    python = _find_python("3.12")
    wheelhouse = ROOT / ".cache" / "wheelhouse-newest"
    if not python or not wheelhouse.is_dir():
        pytest.skip(
            "needs Python 3.12 and tools/bootstrap_newest.sh's wheelhouse (make test-newest makes both)"
        )
    _, wheel = built
    venv = tmp_path / "venv"
    assert _run([python, "-m", "venv", str(venv)]).returncode == 0
    pip = [str(venv / "bin" / "python"), "-m", "pip"]
    report = tmp_path / "report.json"
    install = _run(
        [
            *pip,
            "install",
            "-q",
            "--no-index",
            "--find-links",
            str(wheelhouse),
            "--report",
            str(report),
            "-c",
            str(ROOT / "requirements" / "lock-newest.txt"),
            str(wheel),
        ]
    )
    assert install.returncode == 0, (install.stdout + install.stderr)[-3000:]
    installed = {
        canonicalize_name(item["metadata"]["name"])
        for item in json.loads(report.read_text())["install"]
    }
    assert {"tfmodels", "tensorflow", "keras", "safetensors", "gguf"} <= installed
    assert not installed & set(PIPELINE_ONLY), installed & set(PIPELINE_ONLY)  # (grpcio comes with TF)
    # Out of the repository, so that only the installed package can be imported.
    python = str(venv / "bin" / "python")
    quiet = _run([python, "-c", "import tfmodels"], cwd=tmp_path)
    assert (quiet.returncode, quiet.stdout, quiet.stderr) == (0, "", ""), quiet.stderr[-3000:]
    quickstart = _run([python, "-c", QUICKSTART], cwd=tmp_path)
    assert quickstart.returncode == 0 and "quickstart ok" in quickstart.stdout, quickstart.stderr[
        -3000:
    ]
    generate = _run(
        [python, "-m", "tfmodels.examples.generate", "Hi", "--smoke", "--max-new-tokens", "4"],
        cwd=tmp_path,
    )
    assert generate.returncode == 0, generate.stderr[-3000:]
    lines = generate.stdout.strip().splitlines()
    result = json.loads(lines[-1])
    assert (result["prompt"], result["sampler"]) == ("Hi", "greedy"), result
    assert isinstance(result["completion"], str), lines
