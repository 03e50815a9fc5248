"""Counts the memory-mapping system calls of a program, per step.

Runs the command under `strace -f` (memory calls and writes only), takes
every write of a line starting with `initial_loss` or `step_ms` as the end
of a step, and
prints, for the steps after the first timed one, the mean number of
`mmap`, `munmap`, `mremap`, `mprotect` (how glibc grows a thread's
arena), `brk` and `madvise` calls per step with the bytes each maps,
unmaps, remaps, protects, grows the heap by, shrinks it by, or advises
away; plus the minor page faults of the whole run (from `getrusage` of the
child). The solstice side of `cargo bench --bench gpt_step` prints such
lines when run as its own child:

    GPT_STEP_CHILD=1 GPT_STEP_STEPS=6 python3 tools/profile/memory_syscalls.py \
        target/release/deps/gpt_step-HASH

Usage: python3 memory_syscalls.py COMMAND [ARGS...]
"""

import collections
import os
import re
import resource
import subprocess
import sys
import tempfile

CALLS = ("mmap", "munmap", "mremap", "mprotect", "brk", "madvise")
LINE = re.compile(r"^(\d+)\s+(?:<\.\.\. )?(\w+)(?:\(| resumed>)(.*?)\s*=\s*(-?\w+)")


def parse(path):
    steps = []
    current = collections.Counter()
    brk = {}
    pending = {}
    with open(path) as f:
        for raw in f:
            if raw.rstrip().endswith("<unfinished ...>"):
                m = re.match(r"^(\d+)\s+(\w+)\((.*)<unfinished", raw)
                if m:
                    pending[m.group(1)] = (m.group(2), m.group(3))
                continue
            m = LINE.match(raw)
            if not m:
                continue
            pid, name, args, ret = m.groups()
            if "resumed>" in raw and pid in pending:
                name, head = pending.pop(pid)
                args = head + args
            if name == "write":
                if "step_ms" in args or "initial_loss" in args:
                    steps.append(current)
                    current = collections.Counter()
                continue
            if name not in CALLS:
                continue
            parts = [p.strip() for p in args.rstrip().rstrip(")").split(",")]
            current[name] += 1
            if name == "mmap" and ret.startswith("0x"):
                current["mmap_bytes"] += int(parts[1])
            elif name == "munmap":
                current["munmap_bytes"] += int(parts[1])
            elif name == "mprotect":
                current["mprotect_bytes"] += int(parts[1])
            elif name == "madvise":
                current["madvise_bytes"] += int(parts[1])
            elif name == "mremap":
                current["mremap_bytes"] += abs(int(parts[2]) - int(parts[1]))
            elif name == "brk" and ret.startswith("0x"):
                new = int(ret, 16)
                old = brk.get(pid, brk.get("any"))
                if old is not None:
                    delta = new - old
                    key = "brk_grow_bytes" if delta > 0 else "brk_shrink_bytes"
                    current[key] += abs(delta)
                brk[pid] = brk["any"] = new
    return steps


def main():
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    with tempfile.TemporaryDirectory() as tmp:
        trace = os.path.join(tmp, "trace")
        before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_minflt
        subprocess.run(
            ["strace", "-f", "-qq", "--seccomp-bpf", "-e", "trace=" + ",".join(CALLS + ("write",)),
             "-s", "64", "-o", trace] + sys.argv[1:],
            check=True, stdout=subprocess.DEVNULL,
        )
        faults = resource.getrusage(resource.RUSAGE_CHILDREN).ru_minflt - before
        steps = parse(trace)
    # The first marker ends the set-up and the untimed first step; the
    # next intervals are the timed steps.
    timed = steps[1:]
    if not timed:
        sys.exit("no step_ms lines were written")
    total = collections.Counter()
    for s in timed:
        total.update(s)
    n = len(timed)
    print(f"{n} steps; per step:")
    for name in CALLS:
        print(f"  {name:<8} {total[name] / n:8.1f} calls")
    keys = ("mmap_bytes", "munmap_bytes", "mremap_bytes", "mprotect_bytes",
            "brk_grow_bytes", "brk_shrink_bytes", "madvise_bytes")
    for key in keys:
        print(f"  {key:<17} {total[key] / n / 2**20:10.1f} MiB")
    print("  heap growth by step (MiB): "
          + " ".join(f"{s['brk_grow_bytes'] / 2**20:.0f}" for s in timed))
    setup = steps[0]
    print("set-up and first step: " + ", ".join(f"{c} {setup[c]}" for c in CALLS)
          + f"; mmap {setup['mmap_bytes'] / 2**20:.1f} MiB, brk +"
          + f"{setup['brk_grow_bytes'] / 2**20:.1f} MiB")
    print(f"minor page faults, whole run: {faults}")


if __name__ == "__main__":
    main()
