"""Commands on data sets: data prepare (an image folder as a memory-mapped cache)."""
from __future__ import annotations

import os
import sys


def cmd_data_prepare(a) -> int:
    from ..data.cache import META, Interrupted, files, prepare
    from ..run.resources import gib

    again = f"dse data prepare imagefolder {a.path} --res {a.res} -o {a.output} --resume"
    try:
        m = prepare(a.path, a.output, a.res, workers=a.workers, resume=a.resume, progress=not a.quiet)
    except Interrupted as e:
        print(f"dse: interrupted: {e.done}/{e.total} images are in {e.out}; continue with: {again}", file=sys.stderr)
        return 130
    size = sum(os.path.getsize(os.path.join(a.output, f)) for s in m["counts"] for f in files(s)[:2])
    counts = " + ".join(f"{n} {s}" for s, n in m["counts"].items())
    print(f"{a.output}: {counts} images of {len(m['classes'])} classes at {m['res']} px ({gib(size)}; "
          f"{m['decoded']} decoded now); class names and sha256 in {os.path.join(a.output, META)}")
    print(f"train on it with: data: {{name: cache, path: {a.output}, res: {m['res']}}}")
    return 0
