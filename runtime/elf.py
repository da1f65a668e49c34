"""Reading ELF files without binutils or dlopen: the header (machine, class), section sizes,
undefined symbols and the bytes of a defined data symbol.

The loader reads a model library's machine and embedded metadata from its bytes before
anything is mapped, because dlopen runs the library's constructors and a wrong machine only
gives "cannot open shared object". Every offset read is bounds-checked: a truncated or
malformed file is an ElfError, never an IndexError or struct.error.
"""

from __future__ import annotations

import platform
import struct
from dataclasses import dataclass

# e_machine values (ELF gABI) -> the architecture names tilecc uses in triples.
_MACHINES = {3: "x86", 40: "arm", 62: "x86_64", 183: "aarch64", 243: "riscv", 8: "mips",
             20: "ppc", 21: "ppc64", 22: "s390x", 258: "loongarch"}
_HOST_ALIASES = {"amd64": "x86_64", "x64": "x86_64", "arm64": "aarch64", "i386": "x86",
                 "i686": "x86", "ppc64le": "ppc64"}
SHF_ALLOC, SHT_SYMTAB, SHT_NOBITS, SHT_DYNSYM = 0x2, 2, 8, 11
STT_FUNC = 2


class ElfError(ValueError):
    """Not an ELF file, or one whose tables point outside it."""


@dataclass(frozen=True)
class ElfHeader:
    machine: str  # tilecc arch name ("x86_64", "aarch64", "riscv64", ...) or "machine N"
    bits: int
    little_endian: bool

    def describe(self) -> str:
        return self.machine.replace("x86_64", "x86-64")


def arch_name(name: str) -> str:
    """A triple's or platform.machine()'s architecture in the names ElfHeader uses."""
    name = name.lower()
    if name.startswith("armv") or name in ("arm", "armhf", "armel", "thumbv7"):
        return "arm"
    return _HOST_ALIASES.get(name, name)


def host_arch() -> str:
    return arch_name(platform.machine())


def host_bits() -> int:
    """Pointer width of this process (a 32-bit Python on a 64-bit kernel loads 32-bit ELF)."""
    return struct.calcsize("P") * 8


def _unpack(fmt: str, data: bytes, off: int) -> tuple:
    try:
        return struct.unpack_from(fmt, data, off)
    except struct.error:
        raise ElfError(f"truncated ELF file (a table at offset {off} lies outside it)") from None


def header(data: bytes) -> ElfHeader:
    if data[:4] != b"\x7fELF" or len(data) < 0x34:
        raise ElfError("not an ELF file")
    if data[4] not in (1, 2) or data[5] not in (1, 2):
        raise ElfError("ELF file of unknown class or byte order")
    bits, little = 64 if data[4] == 2 else 32, data[5] == 1
    machine, = _unpack(("<" if little else ">") + "H", data, 0x12)
    arch = _MACHINES.get(machine, f"machine {machine}")
    if arch == "riscv":
        arch += str(bits)
    elif arch == "x86_64" and bits == 32:
        arch = "x32"
    return ElfHeader(arch, bits, little)


def sections(data: bytes) -> list[dict]:
    """The section table, each section a dict with its name resolved."""
    h = header(data)
    e = "<" if h.little_endian else ">"
    fields = ("name", "type", "flags", "addr", "offset", "size", "link", "info", "align",
              "entsize")
    if h.bits == 64:
        shoff, = _unpack(e + "Q", data, 0x28)
        shentsize, shnum, shstrndx = _unpack(e + "HHH", data, 0x3A)
        fmt = e + "IIQQQQIIQQ"
    else:
        shoff, = _unpack(e + "I", data, 0x20)
        shentsize, shnum, shstrndx = _unpack(e + "HHH", data, 0x2E)
        fmt = e + "IIIIIIIIII"
    secs = [dict(zip(fields, _unpack(fmt, data, shoff + k * shentsize))) for k in range(shnum)]
    if shstrndx >= len(secs):
        raise ElfError("ELF section-name table index out of range")
    strtab = secs[shstrndx]
    for s in secs:
        s["name"] = _cstring(data, strtab["offset"] + s["name"])
        s["is64"], s["endian"] = h.bits == 64, e
    return secs


def _cstring(data: bytes, start: int) -> str:
    end = data.find(b"\0", start)
    if start >= len(data) or end < 0:
        raise ElfError("ELF string table entry lies outside the file")
    return data[start:end].decode(errors="replace")


def _symbols(data: bytes, secs: list[dict], table_type: int):
    """(name, value, size, info, shndx) of every entry of the symbol tables of a type."""
    for s in secs:
        if s["type"] != table_type or s["link"] >= len(secs):
            continue
        strtab = secs[s["link"]]
        is64, e = s["is64"], s["endian"]
        entsize = 24 if is64 else 16
        for off in range(s["offset"] + entsize, s["offset"] + s["size"], entsize):
            if is64:
                name, info, _, shndx, value, size = _unpack(e + "IBBHQQ", data, off)
            else:
                name, value, size, info, _, shndx = _unpack(e + "IIIBBH", data, off)
            yield _cstring(data, strtab["offset"] + name), value, size, info, shndx


def undefined_symbols(data: bytes) -> list[str]:
    """Names of undefined global symbols in an ELF relocatable object."""
    names = {n for n, _, _, info, shndx in _symbols(data, sections(data), SHT_SYMTAB)
             if shndx == 0 and info >> 4 != 0}  # SHN_UNDEF, not STB_LOCAL
    return sorted(n for n in names if n)


def symbol_bytes(data: bytes, name: str) -> bytes | None:
    """The initialised bytes of the exported data symbol `name` of a shared library (from
    .dynsym, so a stripped library works), or None if it has no such symbol."""
    secs = sections(data)
    for sym, value, size, _, shndx in _symbols(data, secs, SHT_DYNSYM):
        if sym != name or shndx == 0 or shndx >= len(secs):
            continue
        sec = secs[shndx]
        if sec["type"] == SHT_NOBITS or not sec["addr"] <= value <= sec["addr"] + sec["size"]:
            raise ElfError(f"symbol {name} has no initialised bytes in the file")
        start = sec["offset"] + value - sec["addr"]
        if size > sec["size"] or start + size > len(data):
            raise ElfError(f"symbol {name} lies outside the file")
        return data[start:start + size]
    return None


def function_symbols(data: bytes) -> list[tuple[str, int, int]]:
    """(name, address, size) of the defined functions of an ELF file, by address: .symtab
    when present (it names the local functions too: a model's kernels are local), else
    .dynsym. The Thumb bit of 32-bit ARM addresses is cleared, so addresses are where the
    code starts."""
    secs = sections(data)
    is_arm = header(data).machine == "arm"
    found: dict[int, tuple[str, int, int]] = {}
    for table in (SHT_SYMTAB, SHT_DYNSYM):
        for name, value, size, info, shndx in _symbols(data, secs, table):
            if info & 0xF == STT_FUNC and shndx != 0 and name:
                addr = value & ~1 if is_arm else value
                found.setdefault(addr, (name, addr, size))
        if found:
            break
    return sorted(found.values(), key=lambda s: s[1])
