"""Commands on spaces and configurations (no training): spaces, show, describe, sample, models, scale apply."""
from __future__ import annotations

import json
import sys

import yaml

from ..errors import DseError
from .common import parse_sets


def stage_table(rec: dict) -> str:
    """A plain stage table plus the complexity line."""
    from ..models.blocks import DEFAULT, block
    from ..space.units import fmt

    kinds = list(dict.fromkeys(s.get("block", DEFAULT) for s in rec["stages"]))  # columns: the blocks' fields
    fields = list(dict.fromkeys(f for k in kinds for f in block(k).fields))
    cols = ["d", "w"] + (["block"] if kinds != [DEFAULT] else []) + fields + ["stride", "se"]
    head = ["stage"] + cols

    def cell(s: dict, c: str) -> str:  # "-" where the stage's block does not read the field
        kind = s.get("block", DEFAULT)
        return kind if c == "block" else str(s[c]) if c in ("d", "w", "stride", "se", *block(kind).fields) else "-"
    rows = [[str(i + 1)] + [cell(s, c) for c in cols] for i, s in enumerate(rec["stages"])]
    wid = [max(len(r[i]) for r in [head] + rows) for i in range(len(head))]
    lines = ["  ".join(x.rjust(w) for x, w in zip(r, wid)) for r in [head] + rows]
    cfg = " ".join(f"{k}={','.join(map(str, v)) if isinstance(v, list) else v}" for k, v in rec["config"].items())
    net = rec.get("net", {})
    top = f"{rec['space']} {rec['id']}  {cfg}"
    lines = [top, f"stem {net.get('stem_w')}  head {net.get('head_w') or '-'}  res {net.get('res')}  "
                  f"classes {net.get('classes')}  act {net.get('act')}"] + lines
    lines.append(f"flops {fmt(rec['flops'])}  params {fmt(rec['params'])}  acts {fmt(rec['acts'])}  "
                 f"({rec['flops']:,} / {rec['params']:,} / {rec['acts']:,})")
    return "\n".join(lines)


def cmd_spaces(a) -> int:
    from ..space.sampler import load
    from ..space.spec import list_spaces

    recs = []
    for name, path in list_spaces().items():
        sp = load(name)
        parent = sp.spec.get("extends_chain", [])
        recs.append({"name": name, "family": sp.family, "extends": parent[0] if parent else None,
                     "doc": sp.spec.get("doc", ""), "path": str(path)})
    if a.json:
        print(json.dumps(recs))
    for r in recs if not a.json else ():
        print(f"{r['name']:16s} {r['family']:7s} {'<- ' + r['extends'] if r['extends'] else '':16s} {r['doc']}")
    return 0


def cmd_show(a) -> int:
    from ..space.sampler import load
    from ..space.spec import resolve

    sp = load(a.space)  # the whole space checked (parameters, constraints, expressions) before it is shown
    declared = resolve(a.space)[0].get("presets", {})
    spec = {k: v for k, v in sp.spec.items() if k not in ("extends_chain", "presets")}
    chain = sp.spec.get("extends_chain", [])
    outside = sp.presets_outside()
    if a.json:
        print(json.dumps({"path": str(sp.path), "extends_chain": chain, "space": spec,
                          "presets": {k: {**sp.presets[k], "outside": why} for k, why in outside.items()},
                          "not_listed": [k for k in declared if k not in sp.presets]}))
        return 0
    print(f"# {sp.path}" + (f" (resolved through {' <- '.join(chain)})" if chain else ""))
    print(yaml.safe_dump(spec, sort_keys=False, default_flow_style=None, width=110).rstrip())
    if outside:
        print("presets:  # published models; those outside the sampled space say why")
    for name, why in outside.items():
        text = yaml.safe_dump({name: sp.presets[name]}, sort_keys=False, default_flow_style=None, width=110).rstrip()
        note = f"# outside the sampled space: {'; '.join(why)}" if why else ""
        if note and "\n" in text:
            print(f"  {note}")
        print("\n".join("  " + ln for ln in text.splitlines()) + (f"  {note}" if note and "\n" not in text else ""))
    left = [k for k in declared if k not in sp.presets]
    if left:
        print(f"# not listed: {len(left)} inherited presets ({', '.join(left)}) lie outside this space's ranges")
    return 0


def cmd_describe(a) -> int:
    from ..space.sampler import describe

    s = describe(a.space, preset=a.preset, at_res=a.res, **parse_sets(a.set))
    rec = s.to_dict()
    print(json.dumps(rec, sort_keys=True) if a.json else stage_table(rec))
    return 0


def cmd_sample(a) -> int:
    from ..io import check_new, write_atomic
    from ..progress import Progress
    from ..space.sampler import sample
    from ..space.units import parse_band

    bands = {m: parse_band(getattr(a, m), f"--{m}") for m in ("flops", "params", "acts") if getattr(a, m)}
    if a.output is None and not sys.stdout.isatty():
        a.output = "-"  # piped: the samples are the output
    if a.output and a.output != "-":
        check_new(a.output, a.force)
    with Progress(a.n, f"sampling {a.space}", every=0, enabled=not a.quiet, final=False) as bar:
        res = sample(a.space, a.n, seed=a.seed, max_tries=a.max_tries, workers=a.workers,
                     progress=lambda k, t: bar.update(k, f"tried {t}"), **bands)
    out = sys.stderr if a.output == "-" else sys.stdout
    if a.output == "-":
        sys.stdout.write(res.to_jsonl())
    elif a.output:
        write_atomic(a.output, res.to_jsonl(), force=a.force)
    if not a.quiet:
        where = (f"\nwrote {len(res)} samples to {a.output}" if a.output not in (None, "-") else
                 "" if a.output == "-" else "\nnot written: no -o given (add -o FILE, or -o - for JSON Lines on "
                                           "stdout)")
        print(res.summary() + where, file=out)
    return 0


def cmd_models(a) -> int:
    from ..space.sampler import describe
    from ..space.zoo import list_models, zoo
    from ..space.units import fmt

    names, table = list_models(a.pattern), zoo()
    if not names:
        raise DseError(f"no model matches {a.pattern!r} (dse models lists them all)")
    rows = []
    for n in names:
        space, preset = table[n]
        s = describe(space, preset=preset)
        rows.append({"name": n, "space": space, "preset": preset, "res": s.config.net.res, "id": s.id,
                     "flops": s.cx.flops, "params": s.cx.params, "acts": s.cx.acts})
    if a.json:
        print(json.dumps(rows))
    else:
        w = max(len(r["name"]) for r in rows)
        print(f"{'model':{w}s}  {'res':>4s}  {'flops':>8s}  {'params':>8s}  space/preset")
        for r in rows:
            print(f"{r['name']:{w}s}  {r['res']:4d}  {fmt(r['flops']):>8s}  {fmt(r['params']):>8s}  "
                  f"{r['space']}/{r['preset']}")
    return 0


def _phis(text: str, check=lambda phi: None) -> list[int]:
    """--phi as a list; `check(largest)` runs before a range is made (0..10**12 is refused, not allocated)."""
    try:
        if ".." in text:
            lo, hi = (int(x) for x in text.split(".."))
            out = None
        else:
            out = [int(x) for x in text.split(",")]
            lo, hi = min(out), max(out)
    except ValueError:
        raise DseError(f"--phi: expected N, A..B or a comma list, got '{text}'") from None
    if hi < lo:
        raise DseError(f"--phi: the range '{text}' is empty")
    if lo < 0:
        raise DseError(f"--phi must be >= 0, got {lo}")
    check(hi)
    return out if out is not None else list(range(lo, hi + 1))


def cmd_scale_apply(a) -> int:
    from ..space.scaled import compound_family
    from ..space.scaling import check_phi

    phis = _phis(a.phi, lambda phi: check_phi(phi, a.alpha, a.beta, a.gamma, a.base_res))
    df = compound_family(a.alpha, a.beta, a.gamma, phis, a.base_res)
    if a.json:
        print(df.to_json(orient="records"))
    else:
        from ..space.units import fmt
        show = df.assign(flops=df["flops"].map(fmt), params=df["params"].map(fmt), acts=df["acts"].map(fmt))
        print(f"alpha={a.alpha} beta={a.beta} gamma={a.gamma} (alpha*beta^2*gamma^2 = "
              f"{a.alpha * a.beta ** 2 * a.gamma ** 2:.3f})")
        print(show.round(4).to_string(index=False))
    return 0
