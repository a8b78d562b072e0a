"""The VM labs' checks are right in a guest that KVM accelerates and in one that QEMU's TCG
emulates, decided from the guest's own evidence; quizzes do not reward trial and error.

The checks run here as they run in the tiny guest, with busybox's ``sh``, against a fake
guest: ``CHECK_ROOT`` points them at a folder holding its ``dmesg`` output, ``proc/``,
``sys/``, ``dev/`` and ``root/answers/``. The two guests below are what a real guest of each
kind shows (the TCG one is this project's CI machine; the KVM one a host with nested KVM).
tests/vm/test_course_vm_labs.py runs the same checks in a real guest.
"""

from __future__ import annotations

import itertools
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

CONTENT = Path(__file__).resolve().parents[2] / "content" / "linux-virt"
GUEST_VIEW = CONTENT / "01-virt-vs-containers/labs/guest-view/steps"
DETECT = CONTENT / "02-virtualization-platforms/labs/detect-hypervisor/steps"
BUSYBOX = shutil.which("busybox") or "/bin/busybox"


@dataclass(frozen=True)
class Guest:
    name: str
    dmesg: str
    cpu_flags: str
    clocksources: str
    current_clocksource: str
    dev_kvm: bool = False


TCG = Guest(
    name="tcg",
    dmesg=(
        "[    0.000000] DMI: QEMU Standard PC (i440FX + PIIX, 1996), BIOS 1.16.2-debian-1.16.2-1\n"
        "[    0.000000] tsc: Detected 2596.130 MHz processor\n"
        "[    0.046705] Booting paravirtualized kernel on bare hardware\n"
        "[    2.076923] clocksource: Switched to clocksource tsc\n"
    ),
    cpu_flags="fpu de pse tsc msr pae cx8 apic sep pge cmov nx lm pni cx16 hypervisor lahf_lm svm",
    clocksources="tsc hpet acpi_pm",
    current_clocksource="tsc",
)
KVM = Guest(
    name="kvm",
    dmesg=(
        "[    0.000000] DMI: QEMU Standard PC (i440FX + PIIX, 1996), BIOS 1.16.2-debian-1.16.2-1\n"
        "[    0.000000] Hypervisor detected: KVM\n"
        "[    0.000000] kvm-clock: Using msrs 4b564d01 and 4b564d00\n"
        "[    0.041312] Booting paravirtualized kernel on KVM\n"
        "[    0.512345] clocksource: Switched to clocksource kvm-clock\n"
    ),
    cpu_flags="fpu vme de pse tsc msr pae mce cx8 apic sep vmx ssse3 cx16 x2apic hypervisor",
    clocksources="kvm-clock tsc acpi_pm",
    current_clocksource="kvm-clock",
)
#: KVM without nested virtualization: no vmx/svm, and newer kernels may pick tsc.
KVM_PLAIN = Guest(
    name="kvm-plain",
    dmesg=KVM.dmesg,
    cpu_flags="fpu vme de pse tsc msr pae mce cx8 apic sep ssse3 cx16 x2apic hypervisor",
    clocksources="kvm-clock tsc acpi_pm",
    current_clocksource="tsc",
)


def make_guest(root: Path, guest: Guest, answers: dict[str, str]) -> Path:
    (root / "dmesg").write_text(guest.dmesg)
    (root / "proc").mkdir()
    (root / "proc/cpuinfo").write_text(
        f"processor\t: 0\nmodel name\t: QEMU Virtual CPU\nflags\t\t: {guest.cpu_flags}\n"
    )
    clock = root / "sys/devices/system/clocksource/clocksource0"
    clock.mkdir(parents=True)
    (clock / "available_clocksource").write_text(guest.clocksources + " \n")
    (clock / "current_clocksource").write_text(guest.current_clocksource + "\n")
    (root / "dev").mkdir()
    if guest.dev_kvm:
        (root / "dev/kvm").write_text("")
    (root / "root/answers").mkdir(parents=True)
    for name, value in answers.items():
        (root / "root/answers" / name).write_text(value + "\n")
    return root


def run_check(check: Path, root: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [BUSYBOX, "sh", str(check)],
        env={"CHECK_ROOT": str(root), "PATH": "/usr/bin:/bin", "LANG": "C.UTF-8"},
        capture_output=True,
        text=True,
        timeout=10,
    )


def verdict(tmp_path: Path, check: Path, guest: Guest, answers: dict[str, str]):
    root = tmp_path / f"{guest.name}-{len(list(tmp_path.iterdir()))}"
    root.mkdir()
    result = run_check(check, make_guest(root, guest, answers))
    assert result.stdout.strip(), f"{check.name} says nothing to the student"
    return result.returncode == 0, result.stdout


#: What a student writes after reading each guest, per check.
RIGHT = {
    GUEST_VIEW / "03-dmesg.check": {
        TCG: {"pv-platform": "bare hardware", "accel": "tcg"},
        KVM: {"pv-platform": "KVM", "accel": "kvm"},
    },
    DETECT / "02-cpuid.check": {
        TCG: {"hypervisor": "none", "accel": "tcg"},
        KVM: {"hypervisor": "KVM", "accel": "kvm"},
    },
    DETECT / "03-clocksource.check": {
        TCG: {"clocksource": "tsc", "kvm-clock": "no"},
        KVM: {"clocksource": "kvm-clock", "kvm-clock": "yes"},
        KVM_PLAIN: {"clocksource": "tsc", "kvm-clock": "yes"},
    },
    DETECT / "04-nested.check": {
        TCG: {"nested": "yes", "dev-kvm": "no"},
        KVM: {"nested": "yes", "dev-kvm": "no"},
        KVM_PLAIN: {"nested": "no", "dev-kvm": "no"},
    },
    DETECT / "05-quiz.check": {TCG: {"quiz": "ACBC"}, KVM: {"quiz": "BCBC"}},
    GUEST_VIEW / "05-quiz.check": {TCG: {"quiz": "BCA"}, KVM: {"quiz": "BCA"}},
}
CASES = [(check, guest) for check, guests in RIGHT.items() for guest in guests]


def case_id(case) -> str:
    check, guest = case
    return f"{check.parent.parent.name}/{check.stem}-{guest.name}"


@pytest.mark.parametrize("case", CASES, ids=case_id)
def test_a_fresh_guest_fails_with_a_hint(tmp_path, case):
    check, guest = case
    passed, output = verdict(tmp_path, check, guest, {})
    assert not passed
    assert "/root/answers/" in output


@pytest.mark.parametrize("case", CASES, ids=case_id)
def test_the_answers_read_from_the_guest_pass(tmp_path, case):
    check, guest = case
    passed, output = verdict(tmp_path, check, guest, RIGHT[check][guest])
    assert passed, output


@pytest.mark.parametrize("case", CASES, ids=case_id)
def test_each_single_wrong_answer_fails(tmp_path, case):
    check, guest = case
    right = RIGHT[check][guest]
    for name, value in right.items():
        for wrong in _wrong_values(name, value):
            passed, output = verdict(tmp_path, check, guest, right | {name: wrong})
            assert not passed, f"{name}={wrong} accepted: {output}"


def _wrong_values(name: str, value: str) -> list[str]:
    if name == "quiz":
        return []  # the quiz test below covers these
    return {"yes": ["no"], "no": ["yes"], "kvm": ["tcg"], "tcg": ["kvm"]}.get(
        value, [value + "x", "none" if value != "none" else "KVM"]
    )


def test_tcg_answers_are_wrong_in_a_kvm_guest_and_back(tmp_path):
    """The checks decide from the guest, not from a constant: the other guest's answers fail
    where the two guests differ."""
    for check, guests in RIGHT.items():
        tcg, kvm = guests[TCG], guests[KVM]
        if tcg == kvm:
            continue
        assert not verdict(tmp_path, check, KVM, tcg)[0], f"{check.name}: TCG answers in KVM"
        assert not verdict(tmp_path, check, TCG, kvm)[0], f"{check.name}: KVM answers in TCG"


def test_tcg_svm_is_not_credited_to_the_host(tmp_path):
    _, output = verdict(
        tmp_path, DETECT / "04-nested.check", TCG, RIGHT[DETECT / "04-nested.check"][TCG]
    )
    assert "QEMU" in output and "无关" in output
    assert "开放了嵌套虚拟化" not in output


# -- quizzes -------------------------------------------------------------------------------


QUIZZES = {check: guests for check, guests in RIGHT.items() if check.stem.endswith("quiz")}


def test_every_quiz_of_the_course_is_covered_here():
    found = {p for p in CONTENT.glob("*/labs/*/steps/*quiz*.check")}
    assert found == set(QUIZZES)


@pytest.mark.parametrize("check", sorted(QUIZZES), ids=lambda c: c.parent.parent.name)
def test_a_quiz_says_how_many_are_wrong_never_which(tmp_path, check):
    """A student changing one answer at a time learns only a count: every answer with one
    wrong letter gets the same words, whichever question it is."""
    for guest, answers in QUIZZES[check].items():
        right = answers["quiz"]
        outputs = set()
        for position, letter in itertools.product(range(len(right)), "ABC"):
            if letter == right[position]:
                continue
            wrong = right[:position] + letter + right[position + 1 :]
            passed, output = verdict(tmp_path, check, guest, {"quiz": wrong})
            assert not passed, f"{wrong} accepted"
            outputs.add(output)
        assert len(outputs) == 1, outputs
        assert "1 道答错" in outputs.pop()
        two_wrong = "".join("A" if c != "A" else "B" for c in right[:2]) + right[2:]
        assert "2 道答错" in verdict(tmp_path, check, guest, {"quiz": two_wrong})[1]


@pytest.mark.parametrize("check", sorted(QUIZZES), ids=lambda c: c.parent.parent.name)
def test_a_quiz_counts_failed_checks_so_answers_cannot_be_found_by_trying(check):
    """Knowing how many answers are wrong still lets a student find the right letters by
    changing one at a time; a quiz therefore allows a few failed checks only (counted per
    student across sessions, see tests/docker/test_checks.py), fewer than such a search
    needs, and says so to the student."""
    step = read_step(check.with_suffix(".md"))
    questions = len(QUIZZES[check][TCG]["quiz"])
    assert 1 <= step.attempts <= questions  # one change at a time needs a try per question
    assert f"最多只能有 {step.attempts} 次" in check.with_suffix(".md").read_text()


def read_step(md: Path):
    from apps.courses.loader import read_course

    for module in read_course(CONTENT).modules:
        for lab in module.labs:
            for step in lab.steps:
                if f"{lab.slug}/steps/{step.number:02d}-{step.slug}.md" in str(md):
                    return step
    raise LookupError(md)
