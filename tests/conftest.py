"""Process-wide test settings shared by every test folder."""

import os

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402


def _shares_a_module_fixture(item):
    """True when the test uses a module-scoped fixture (a trained model, a running server, a pipeline run) other
    than the autouse `_give_memory_back`, which every test has and which holds nothing a test shares."""
    definitions = item._fixtureinfo.name2fixturedefs
    return any(definitions.get(name) and definitions[name][-1].scope in ("module", "package")
               for name in item.fixturenames if name != "_give_memory_back")


# Seconds each slow e2e test took in a 2-worker run on a 2-core machine (fresh-clone CI of da22620, 2026-12-07;
# relative sizes are what matter). The e2e tests are handed out longest unit first (a unit: an xdist group, or
# one test), so no long test starts last while the other worker idles; unlisted tests count as short.
E2E_SECONDS = {  # the first key in a test's node id counts
    "character_spans": 100, "test_beam_clusters_e2e.py": 100, "test_pretraining_e2e.py": 180, "test_task_demo_runs": 100,
    "[token_classification]": 60, "[translate]": 70, "test_quickstart.py": 120, "08_compress_and_deploy": 180,
    "test_demo_pushes_a_model": 50, "[classify]": 50, "[span_qa]": 90, "[text_generation]": 85,
    "test_classifier_matches_one_worker": 100, "05_serving_clients": 75, "04_tfx_pipeline": 55,
    "06_ner_wnut": 55, "test_translate_e2e.py": 80, "09_generate_and_serve": 40, "10_text_autoencoders": 80,
    "07_squad_qa": 75, "03_translate_en_es": 60, "test_text_vae.py": 60, "01_fine_tune_minilm": 50,
    "test_readme_walkthrough.py": 110
}


def _expected_seconds(nodeid):
    return next((seconds for key, seconds in E2E_SECONDS.items() if key in nodeid), 30)


def _longest_units_first(items):
    """`items` (e2e tests) reordered so that the units with the most expected time come first; a unit's tests keep
    their order."""
    def unit(item):
        group = item.get_closest_marker("xdist_group")
        return (group.args[0] if group.args else group.kwargs.get("name")) if group else item.nodeid

    cost, first = {}, {}
    for index, item in enumerate(items):
        key = unit(item)
        cost[key] = cost.get(key, 0) + _expected_seconds(item.nodeid)
        first.setdefault(key, index)
    return sorted(items, key=lambda item: (-cost[unit(item)], first[unit(item)]))


@pytest.hookimpl(wrapper=True)
def pytest_collection_modifyitems(config, items):
    """In pytest-xdist workers under `--dist loadgroup` (`make test`: -n 2): a module's short tests stay on one
    worker, and so do e2e tests that share a module-scoped fixture, so the fixtures' work is done once (`xdist_group` binds tests
    across modules); and the e2e tests are handed out first, longest first, so the many short tests fill the end
    of the run instead of one long test running alone while the other worker idles."""
    grouping = getattr(config.option, "loadgroup", False)  # set in xdist's workers only
    if grouping:
        for item in items:
            # A short test goes with its module (the session fixtures only its module uses are then built on one
            # worker, not two); a slow one only when it shares a module fixture, so that slow tests spread.
            slow = item.get_closest_marker("e2e") is not None
            if item.get_closest_marker("xdist_group") is None and (not slow or _shares_a_module_fixture(item)):
                item.add_marker(pytest.mark.xdist_group(item.nodeid.split("::")[0]))
        e2e = [item for item in items if item.get_closest_marker("e2e") is not None]
        items[:] = _longest_units_first(e2e) + [item for item in items if item.get_closest_marker("e2e") is None]
    result = yield  # xdist's own hook names each grouped test `<nodeid>@<group>`...
    if grouping:
        from _pytest.nodeid import NodeId

        for item in items:
            # ...in `item._nodeid`, which pytest 9.2 no longer reads (node ids come from the structured
            # `_id`): without this, loadgroup groups nothing (pytest-dev/pytest-xdist#1386, fix pending).
            intended = getattr(item, "_nodeid", None)
            if intended and intended != item.nodeid and hasattr(item, "_id"):
                item._id = NodeId.parse(intended)
    return result


@pytest.fixture(autouse=True, scope="module")
def _give_memory_back():
    """After each module: collect its models and hand freed heap back to the system. A worker runs hundreds of
    modules; without this its resident memory only grows (see tools/run_tests.sh)."""
    yield
    import ctypes
    import gc

    gc.collect()
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):  # not glibc
        pass


@pytest.fixture(autouse=True)
def _seed_and_reset_policy():
    """Each test starts from the same seeds and the float32 policy, whatever the last one set."""
    keras.utils.set_random_seed(1234)
    keras.config.set_dtype_policy("float32")
    yield
    keras.config.set_dtype_policy("float32")


def _random_bert_inputs(batch, length, vocab_size, seed=0, pad_from=None):
    rng = np.random.default_rng(seed)
    token_ids = rng.integers(1, vocab_size, size=(batch, length)).astype("int32")
    padding_mask = np.ones((batch, length), "int32")
    if pad_from is not None:
        for i, start in enumerate(pad_from):
            padding_mask[i, start:] = 0
            token_ids[i, start:] = 0
    return {
        "token_ids": token_ids,
        "segment_ids": np.zeros((batch, length), "int32"),
        "padding_mask": padding_mask,
    }


@pytest.fixture
def random_bert_inputs():
    """``make(batch, length, vocab_size, seed=0, pad_from=None)``: random encoder inputs with
    optional right padding (``pad_from[i]`` = first padded position of row i)."""
    return _random_bert_inputs
