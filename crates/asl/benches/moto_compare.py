#!/usr/bin/env python3
"""Runs ASL conformance cases through moto's Step Functions engine and
measures its throughput, for comparison with treza-asl (benches/engine.rs).

Only cases without Wait, JSONata or Task states are used (the suite has no
Task states). Each is first run once and checked against the recorded AWS
outcome; cases moto gets wrong (or cannot run) are skipped and listed with
the reason. The rest are then started `--reps` times each, all executions of
one at a time (moto 5.x cannot hold two executions, see fresh()), polled
with DescribeExecution every 5 ms; only StartExecution..done is timed.

Writes a JSON file that the Rust bench reads (ASL_BENCH_MOTO=FILE):
{"cases_dir", "reps", "cases": [...], "skipped": [{"case", "reason"}],
 "moto": {"version", "executions", "seconds", "executions_per_second"}}
"""

import argparse
import json
import os
import socket
import subprocess
import sys
import time
import urllib.request


def ensure_moto():
    try:
        import boto3  # noqa: F401
        import moto  # noqa: F401
    except ImportError:
        subprocess.check_call([sys.executable, "-m", "pip", "install", "-q", "moto[server]"])


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def same(a, b):
    """JSON equality: numbers by value, booleans are not numbers."""
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and a == b
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        return a == b
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    return type(a) is type(b) and a == b


def load_cases(cases_dir):
    out = []
    for name in sorted(os.listdir(cases_dir)):
        d = os.path.join(cases_dir, name)
        try:
            expected = json.load(open(os.path.join(d, "expected.json")))
            definition = open(os.path.join(d, "definition.json")).read()
            inp = open(os.path.join(d, "input.json")).read()
        except OSError:
            continue
        feats = set(expected.get("features") or [])
        if feats & {"JSONata", "Wait"} or '"Task"' in definition:
            continue
        out.append((name, definition, inp, expected))
    return out


def wait_done(sfn, arns, timeout):
    """Polls until every execution has left RUNNING; returns {arn: description}."""
    pending = set(arns)
    done = {}
    deadline = time.monotonic() + timeout
    while pending:
        for arn in list(pending):
            d = sfn.describe_execution(executionArn=arn)
            if d["status"] != "RUNNING":
                done[arn] = d
                pending.discard(arn)
        if pending:
            if time.monotonic() > deadline:
                break
            time.sleep(0.005)
    return done, pending


def check(desc, expected):
    """None when moto's outcome matches AWS's recording, else the reason."""
    if desc["status"] != expected["status"]:
        return "status %s, AWS recorded %s (%s)" % (
            desc["status"], expected["status"], (desc.get("error") or "")[:80])
    if expected["status"] == "SUCCEEDED":
        got = json.loads(desc.get("output") or "null")
        if not same(got, expected["output"]):
            return "output differs from AWS's"
    elif desc.get("error") != expected.get("error"):
        return "error %r, AWS recorded %r" % (desc.get("error"), expected.get("error"))
    return None


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--cases", required=True, help="conformance cases directory")
    ap.add_argument("--reps", type=int, default=3, help="runs per supported case")
    ap.add_argument("--out", required=True, help="JSON results file")
    ap.add_argument("--timeout", type=float, default=10.0,
                    help="seconds one execution may take before the case is skipped")
    ap.add_argument("--limit", type=int, default=0, help="use only the first N eligible cases")
    a = ap.parse_args()

    ensure_moto()
    import boto3
    import moto

    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-p", str(port)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        url = "http://127.0.0.1:%d" % port
        for _ in range(200):
            try:
                urllib.request.urlopen(url + "/moto-api/", timeout=1)
                break
            except Exception:
                time.sleep(0.05)
        def fresh():
            # moto 5.x answers 500 ("cannot pickle '_thread.RLock'") to any
            # StartExecution once an execution exists, so the backend is reset
            # (and execution re-enabled) before each one.
            for path, body in (("/moto-api/reset", {}),
                               ("/moto-api/config",
                                {"stepfunctions": {"execute_state_machine": True}})):
                req = urllib.request.Request(
                    url + path, data=json.dumps(body).encode(),
                    headers={"Content-Type": "application/json"}, method="POST")
                urllib.request.urlopen(req, timeout=10).read()
        sfn = boto3.client("stepfunctions", endpoint_url=url, region_name="us-east-1",
                           aws_access_key_id="test", aws_secret_access_key="test")
        role = "arn:aws:iam::123456789012:role/bench"

        cases = load_cases(a.cases)
        if a.limit:
            cases = cases[:a.limit]
        print("checking %d eligible cases against moto..." % len(cases), file=sys.stderr, flush=True)
        machines, supported, skipped = {}, [], []
        for name, definition, inp, expected in cases:
            try:
                fresh()
                arn = sfn.create_state_machine(
                    name=name[:80], definition=definition, roleArn=role)["stateMachineArn"]
                ex = sfn.start_execution(stateMachineArn=arn, name="check", input=inp)
                done, pending = wait_done(sfn, [ex["executionArn"]], a.timeout)
                if pending:
                    print("  skip %s: did not finish" % name, file=sys.stderr, flush=True)
                    skipped.append({"case": name, "reason": "did not finish in %.0fs" % a.timeout})
                    continue
                why = check(done[ex["executionArn"]], expected)
            except Exception as e:  # moto rejected the definition or the call
                why = "%s: %s" % (type(e).__name__, str(e)[:120])
            if why:
                print("  skip %s: %s" % (name, why), file=sys.stderr, flush=True)
                skipped.append({"case": name, "reason": why})
            else:
                machines[name] = (definition, inp)
                supported.append(name)

        # One execution at a time (see fresh()); only StartExecution until
        # DescribeExecution reports the end is timed.
        n = 0
        secs = 0.0
        for rep in range(a.reps):
            for name in supported:
                definition, inp = machines[name]
                fresh()
                arn = sfn.create_state_machine(
                    name=name[:80], definition=definition, roleArn=role)["stateMachineArn"]
                start = time.perf_counter()
                ex = sfn.start_execution(stateMachineArn=arn, name="r%d" % rep, input=inp)
                _, pending = wait_done(sfn, [ex["executionArn"]], a.timeout)
                secs += time.perf_counter() - start
                if pending:
                    sys.exit("moto left %s running" % name)
                n += 1

        result = {
            "cases_dir": os.path.abspath(a.cases),
            "reps": a.reps,
            "cases": supported,
            "skipped": skipped,
            "moto": {"version": moto.__version__, "executions": n, "seconds": secs,
                     "executions_per_second": n / secs if secs > 0 else 0.0},
        }
        with open(a.out, "w") as f:
            json.dump(result, f, indent=1)
        print("moto %s: %d eligible cases, %d supported, %d skipped; %d executions in %.2f s = %.1f executions/s"
              % (moto.__version__, len(cases), len(supported), len(skipped), n, secs,
                 result["moto"]["executions_per_second"]))
        reasons = {}
        for s in skipped:
            key = s["reason"].split(":")[0] if ":" in s["reason"][:40] else s["reason"][:60]
            reasons[key] = reasons.get(key, 0) + 1
        for k, v in sorted(reasons.items(), key=lambda kv: -kv[1]):
            print("  skipped %3d: %s" % (v, k))
    finally:
        server.terminate()
        server.wait(timeout=10)


if __name__ == "__main__":
    main()
