"""Expression constraints in space files: the allow-list, exact evaluation, sampling with workers, TPE, errors."""
import json
import pickle

import pytest

import dse
from dse.errors import DseError
from dse.space.expr import parse

NAMES = {"d", "w", "b", "g", "w0", "wm"}


@pytest.mark.parametrize("text,values,want", [
    ("w[3] >= 2 * w[0]", {"w": [16, 32, 64, 32]}, True),
    ("w[3] >= 2 * w[0]", {"w": [24, 32, 64, 40]}, False),
    ("max(d) <= 8 and not d[0] > 4", {"d": [1, 8, 2, 3]}, True),
    ("sum(d) == 14 or len(w) == 3", {"d": [1, 2, 3, 8], "w": [1, 2, 3, 4]}, True),
    ("min(w[1:]) // 8 % 3 == 1", {"w": [8, 32, 64, 80]}, True),          # 32 // 8 = 4, 4 % 3 = 1
    ("g in [8, 16] and b != 2", {"g": 16, "b": 1}, True),
    ("w0 * wm ** 2 < 100", {"w0": 24, "wm": 2.0}, True),                 # 96 < 100
    ("-w0 + 30 > 0 > w0 - 30", {"w0": 24}, True),                        # a chained comparison
    ("all([w[0] <= w[1], w[1] <= w[2]])", {"w": [1, 2, 2]}, True),
    ("any((w[0] > 1, -w[1] < -3))", {"w": [1, 2]}, False),
])
def test_allowed_expressions_evaluate_as_python_would(text, values, want):
    assert parse(text, NAMES)(values) is want


@pytest.mark.parametrize("text,part", [
    ("w.__class__ > 1", "attribute access not allowed: 'w.__class__'"),
    ("__import__('os').system('true')", "call not allowed: '__import__('os').system('true')'"),
    ("open('x') == 1", "call not allowed: 'open('x')'"),
    ("(lambda: 1)() == 1", "call not allowed"),
    ("all([x > 8 for x in w])", "a comprehension not allowed: '[x > 8 for x in w]'"),
    ("max(w, key=len) > 1", "only plain positional arguments"),
    ("q > 1", "unknown name 'q'"),
    ("w[0] if d[0] else 1", "a conditional expression not allowed"),
    ("w[0] is 8", "operator not allowed: 'w[0] is 8'"),
    ("w[0] & 8", "operator not allowed"),
    ("max == 1", "'max' must be called"),
    ("w[0] >", "invalid syntax"),
    ("2 ** 10 ** 6 > 1", None),  # refused when evaluated: a huge power would hang the sampler
])
def test_everything_else_is_refused_naming_the_part(text, part):
    if part is None:
        with pytest.raises(DseError, match="exponent"):
            parse(text, NAMES)({})
        return
    with pytest.raises(DseError) as e:
        parse(text, NAMES, "my.yaml: constraints[0]: expr")
    msg = str(e.value)
    assert msg.startswith("my.yaml: constraints[0]: expr: ") and part in msg and "\n" not in msg


def space_file(tmp_path, expr, name="wide"):
    p = tmp_path / f"{name}.yaml"
    p.write_text(f"name: {name}\nextends: anynetx_a\nconstraints:\n  - expr: {json.dumps(expr)}\n")
    return p


def test_every_command_refuses_a_bad_expression_in_one_line(tmp_path, run_cli):
    p = space_file(tmp_path, "w.real > 1", "bad")
    want = f"dse: error: {p}: constraints[0]: expr: attribute access not allowed: 'w.real' in 'w.real > 1'\n"
    for args in (["show", p], ["describe", "--space", p, "--set", "d=1,1,1,1", "w=8,8,8,8", "b=1,1,1,1",
                                                          "g=1,1,1,1"],
                 ["sample", "--space", p, "-n", "2", "-o", tmp_path / "s.jsonl"]):
        code, out, err = run_cli(*args)
        assert (code, out, err) == (1, "", want)
    assert not (tmp_path / "s.jsonl").exists()


def test_sampling_with_workers_keeps_only_satisfying_samples(tmp_path, run_cli):
    p = space_file(tmp_path, "w[3] >= 2 * w[0] and max(d) <= 8")
    outs = []
    for workers in (1, 2):
        o = tmp_path / f"s{workers}.jsonl"
        code, _, err = run_cli("sample", "--space", p, "--flops", "360-400M", "-n", "40", "--workers", workers,
                               "-o", o, "-q")
        assert code == 0, err
        outs.append(o.read_bytes())
    assert outs[0] == outs[1]  # the expression is compiled again in each worker process: same samples
    rows = [json.loads(x) for x in outs[0].decode().splitlines()]
    assert len(rows) == 40 and all(r["space"] == "wide" for r in rows)
    assert all(r["config"]["w"][3] >= 2 * r["config"]["w"][0] and max(r["config"]["d"]) <= 8 for r in rows)
    # and the constraint does bite: the parent space gives samples that break it
    plain = dse.sample("anynetx_a", 40, flops=(360e6, 400e6))
    assert any(not (s.config.p["w"][3] >= 2 * s.config.p["w"][0]) for s in plain)
    sp = dse.load(str(p))
    assert pickle.loads(pickle.dumps(sp)).exprs == sp.exprs  # text only: pickles to workers and Ray


def test_an_unsatisfiable_expression_ends_in_the_gave_up_message(tmp_path, run_cli):
    p = space_file(tmp_path, "w[3] > 5000", "never")
    code, out, err = run_cli("sample", "--space", p, "--flops", "360-400M", "-n", "3", "--max-tries", "2000", "-q")
    assert code == 1 and out == ""
    assert err.startswith("dse: error: never: no sample reached the band (flops 360M-400M) after 2000 tries")
    assert "constraint 'w[3] > 5000' held for 0 of 2048 draws" in err and err.count("\n") == 1


def test_tpe_proposals_that_break_an_expression_are_refused(tmp_path):
    from dse.run.search import judge

    sp = dse.load(str(space_file(tmp_path, "w[3] >= 2 * w[0]")))
    point = {**{f"d{i}": 1 for i in range(1, 5)}, **{f"b{i}": 1 for i in range(1, 5)},
             **{f"g{i}": 0 for i in range(1, 5)}}  # g as exponents of 2, w as multiples of 8 (search encodings)
    ok, d_ok = judge(sp, {}, {**point, "w1": 2, "w2": 2, "w3": 2, "w4": 4})
    bad, d_bad = judge(sp, {}, {**point, "w1": 4, "w2": 2, "w3": 2, "w4": 4})
    assert ok is not None and d_ok == 0 and ok.config.p["w"] == [16, 16, 16, 32]
    assert bad is None and d_bad == float("inf")
