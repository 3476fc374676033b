"""Exit 0 when every requirement in the given file is installed at a fitting version."""

import sys
from importlib.metadata import PackageNotFoundError, version

from packaging.requirements import Requirement

missing = []
for line in open(sys.argv[1]):
    line = line.split("#")[0].strip()
    if not line:
        continue
    req = Requirement(line)
    try:
        if not req.specifier.contains(version(req.name), prereleases=True):
            missing.append(line)
    except PackageNotFoundError:
        missing.append(line)
if missing:
    print("missing:", " ".join(missing))
sys.exit(1 if missing else 0)
