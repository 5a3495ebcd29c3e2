# Makes configs/ importable as the package ``electroseg.configs`` so that the YAML files ship in
# the wheel (see [tool.setuptools] in pyproject.toml). It holds YAML only: the code that locates,
# reads and composes them is ``electroseg.config``.
