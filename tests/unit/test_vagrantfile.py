"""The Vagrantfile provisions the VM with the same scripts CI uses (.ci/run -> make test ->
make setup -> scripts/install-criu), so the VM and CI cannot drift apart.

Read as text: there is no Ruby (and no Vagrant) on the machines that run these tests.
"""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def make_target(name: str) -> tuple[list[str], list[str]]:
    """A Makefile target's prerequisites and recipe lines."""
    text = (ROOT / "Makefile").read_text()
    m = re.search(rf"^{name}:(?P<deps>[^\n]*)\n(?P<recipe>(?:\t[^\n]*\n)*)", text, re.M)
    assert m, f"no {name} target in the Makefile"
    return m.group("deps").split(), [line.strip() for line in m.group("recipe").splitlines()]


def provision_script() -> str:
    text = (ROOT / "Vagrantfile").read_text()
    m = re.search(r'config\.vm\.provision\s+"shell".*?<<-SHELL\n(?P<body>.*?)\n\s*SHELL', text, re.S)
    assert m, "the Vagrantfile has no inline shell provisioner"
    return m.group("body")


def test_the_vm_is_a_debian_12_box_with_2_cpus_and_4_gb() -> None:
    text = (ROOT / "Vagrantfile").read_text()
    assert re.search(r'config\.vm\.box\s*=\s*"debian/bookworm64"', text)
    for provider in ("libvirt", "virtualbox"):
        assert f'config.vm.provider "{provider}"' in text
    assert len(re.findall(r"\.cpus\s*=\s*2\b", text)) == 2
    assert len(re.findall(r"\.memory\s*=\s*4096\b", text)) == 2


def test_provisioning_runs_install_criu_then_make_test_setup() -> None:
    lines = [line.strip() for line in provision_script().splitlines()]
    install = lines.index("/vagrant/scripts/install-criu")
    setup = lines.index("make -C /vagrant test-setup")
    assert install < setup
    assert (ROOT / "scripts" / "install-criu").stat().st_mode & 0o111


def test_ci_reaches_the_same_script_through_make() -> None:
    ci = (ROOT / ".ci" / "run").read_text()
    assert re.search(r"^make test$", ci, re.M)
    deps, _ = make_target("test")
    assert "test-setup" in deps
    deps, _ = make_target("test-setup")
    assert "setup" in deps
    _, recipe = make_target("setup")
    assert any(line.startswith("scripts/install-criu") for line in recipe)


def test_two_machine_mode_defines_src_and_dst_on_a_private_network() -> None:
    text = (ROOT / "Vagrantfile").read_text()
    machines = dict(re.findall(r'"(src|dst)" => "(192\.168\.56\.\d+)"', text))
    assert machines == {"src": "192.168.56.10", "dst": "192.168.56.11"}
    assert 'ENV["CRIU_HARNESS_VMS"] == "2"' in text
    assert 'machine.vm.network "private_network", ip: address' in text
    # Outside the two-machine mode the single VM is as it was: one provisioner for all.
    assert len(re.findall(r'config\.vm\.provision\s+"shell"', text)) == 1


def test_the_two_machine_commands_are_the_harness_own_and_name_dst_address() -> None:
    """The commands the Vagrantfile and the README give for the two-machine mode parse as
    the harness's command line, with dst's address on both sides (test_second_host runs
    the same two commands across a veth pair)."""
    from harness.cli import build_parser

    dst = re.search(r'"dst"\s*=>\s*"([\d.]+)"', (ROOT / "Vagrantfile").read_text())
    assert dst, "no dst address in the Vagrantfile"
    for text in ((ROOT / "Vagrantfile").read_text(), (ROOT / "README.md").read_text()):
        commands = re.findall(r"sudo \.venv/bin/criu-harness ([^'\n]+)'", text)
        assert len(commands) >= 2, commands
        parsed = [build_parser().parse_args(c.split()) for c in commands]
        receive = [a for a in parsed if a.command == "receive"]
        run = [a for a in parsed if a.command == "run" and a.destination]
        assert receive and run
        assert {a.listen for a in receive} == {dst.group(1)}
        assert {a.destination for a in run} == {dst.group(1)}
