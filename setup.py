"""Package discovery for setuptools (the rest of the metadata is in pyproject.toml).

Every sub-package of openrs and the Hydra launcher plugin are found, not listed, so a new one ships without an edit
here; conf/ ships inside the package as openrs/conf, so an installed openrs finds its configs
(openrs.config.CONF_DIR). pyproject.toml alone cannot say both: its package finder has no way to add a package
whose directory lies outside the tree it searches.
"""

from setuptools import find_namespace_packages, find_packages, setup

packages = [
    *find_packages(include=["openrs", "openrs.*"]),
    *find_namespace_packages(include=["hydra_plugins.*"]),
    "openrs.conf",
]
setup(packages=packages, package_dir={"openrs.conf": "conf"})
