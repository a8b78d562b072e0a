"""The wait for a sandbox is described in the student's language, numbers included."""

from django.utils import translation

from apps.sessions.progress_messages import translate


def test_backend_progress_is_translated_with_its_number():
    with translation.override("zh-hans"):
        assert translate("booting the VM (12 s)") == "虚拟机正在启动（12 秒）"
        assert translate("creating the container") == "正在创建容器"
    with translation.override("en"):
        assert translate("booting the VM (12 s)") == "booting the VM (12 s)"


def test_unknown_progress_passes_through():
    with translation.override("zh-hans"):
        assert translate("reticulating splines") == "reticulating splines"
        assert translate("") == ""


def test_the_vm_driver_is_said_in_words_not_by_its_name():
    with translation.override("en"):
        assert translate("starting the VM (kvm)") == "starting the VM"
        assert translate("starting the VM (qemu)") == (
            "starting the VM without hardware acceleration (slower)"
        )
        assert "qemu" not in translate("restoring the VM from its snapshot (qemu)")
