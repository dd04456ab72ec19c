"""Where tfmodels keeps what it builds once per machine and reuses (compiled shims, tokenizer tables).

`TFMODELS_CACHE`, else `$XDG_CACHE_HOME/tfmodels`, else `~/.cache/tfmodels`: the same folder as
`tools/beam_runners.sh` uses for the Beam job-server jars. Everything in it can be deleted at any time.
"""

import os


def cache_dir() -> str:
    """The cache folder (not created here)."""
    return os.environ.get("TFMODELS_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache"), "tfmodels")


__all__ = ["cache_dir"]
