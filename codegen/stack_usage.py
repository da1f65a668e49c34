"""Stack estimate of a bare-metal model: the frames LLVM gave its functions, read from the
assembly of the optimised module, plus the frames gcc reports (-fstack-usage) for the C
routines the kernels call.

The bound assumes the call graph a model has: `<name>_run` calls each kernel in turn, and a
kernel calls at most runtime routines (memcpy/memset, ARM's 64-bit division helpers, which may
call one more runtime routine); kernels never call each other and nothing recurses. So the
deepest stack is run's frame + the largest kernel frame + the deepest runtime chain.

Frames come from the unwind directives LLVM writes anyway or on request: ARM EHABI
`.save {regs}` / `.vsave {dregs}` / `.pad #n` (always emitted, also for nounwind code), or
DWARF `.cfi_def_cfa_offset n` (other targets, with `uwtable` set on the copy compiled for this
estimate; the object itself is unchanged).
"""

from __future__ import annotations

import re
from pathlib import Path

_LABEL = re.compile(r"^([A-Za-z_.$][\w.$]*):")
_REGS = re.compile(r"\{([^}]*)\}")


def _reg_count(text: str) -> int:
    n = 0
    for part in _REGS.search(text).group(1).split(","):  # type: ignore[union-attr]
        a, _, b = part.strip().partition("-")
        n += int(b.lstrip("rdsq")) - int(a.lstrip("rdsq")) + 1 if b else 1
    return n


def frames_from_assembly(asm: str) -> dict[str, int]:
    """Bytes of stack each function of an LLVM assembly listing reserves for itself."""
    frames: dict[str, int] = {}
    funcs = set(re.findall(r"\.type\s+([\w.$]+)\s*,\s*[%@]function", asm))
    current = None
    for line in asm.splitlines():
        m = _LABEL.match(line)
        if m and m.group(1) in funcs:
            current = m.group(1)
            frames[current] = 0
            ehabi = cfa = 0
            continue
        if current is None:
            continue
        s = line.strip()
        if s.startswith(".save"):
            ehabi += 4 * _reg_count(s)
        elif s.startswith(".vsave"):
            ehabi += 8 * _reg_count(s)
        elif s.startswith(".pad"):
            ehabi += int(s.split("#")[1], 0)
        elif s.startswith(".cfi_def_cfa_offset"):
            cfa = max(cfa, int(s.split()[1], 0))
        elif s.startswith(".Lfunc_end"):
            current = None
            continue
        frames[current] = max(ehabi, cfa)
    return frames


def assembly_with_unwind_info(llvm_ir: str, target_machine) -> str:
    """The assembly of an optimised module compiled again with `uwtable` on every function,
    so targets without EHABI describe their frames too (the code is the same)."""
    import llvmlite.binding as llvm

    text = re.sub(r"^(attributes #\d+ = \{)", r"\1 uwtable", llvm_ir, flags=re.MULTILINE)
    return target_machine.emit_assembly(llvm.parse_assembly(text))


def gcc_stack_usage(su_file: Path) -> dict[str, int]:
    """function -> bytes from a gcc -fstack-usage .su file ("file:line:col:fn  N  static")."""
    out = {}
    for line in su_file.read_text().splitlines():
        where, nbytes, _ = line.split("\t")
        out[where.rsplit(":", 1)[-1]] = int(nbytes)
    return out


# The ARM division helpers are assembly wrappers (runtime/c/tilecc_baremetal.c): push {r4, lr}
# and a 16-byte slot, around the C routine they call.
_ASM_WRAPPER_FRAME = 24


def estimate(entry_frame: int, kernel_frame: int, runtime: dict[str, int]) -> int:
    """run's frame + the largest kernel frame + the deepest runtime chain (two C routines
    under an assembly wrapper: __aeabi_ldivmod -> tilecc_divmod64 -> tilecc_udivmod64)."""
    chain = sorted(runtime.values(), reverse=True)[:2]
    return entry_frame + kernel_frame + sum(chain) + (_ASM_WRAPPER_FRAME if runtime else 0)


def model_frames(frames: dict[str, int], entry: str) -> dict[str, int]:
    """{"entry": run's frame, "kernels": the largest frame of any other model function}."""
    return {"entry": frames.get(entry, 0),
            "kernels": max((v for k, v in frames.items() if k != entry), default=0)}
