"""Adding and editing a host of a pool: its address checked for the engine it names."""

from __future__ import annotations

import os
import re

from django import forms
from django.utils.translation import gettext_lazy as _

from apps.hosts.models import Engine, Host, Pool

LABEL = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,31}$")
#: The addresses each engine's client library understands.
SCHEMES = {
    Engine.DOCKER: ("unix://", "tcp://", "ssh://"),
    Engine.LIBVIRT: ("qemu:///", "qemu+ssh://", "qemu+tls://", "qemu+unix:///"),
}


class HostForm(forms.ModelForm):
    labels = forms.CharField(
        label=_("Labels"),
        required=False,
        help_text=_(
            "What this host offers that a lab may require, separated by commas: kvm, gpu, runsc."
        ),
    )

    class Meta:
        model = Host
        fields = [
            "name", "pool", "engine", "endpoint", "tls_ca", "tls_cert", "tls_key",
            "max_sessions", "max_cpus", "max_memory_mib", "labels", "enabled",
        ]  # fmt: skip

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        if self.instance.pk:
            self.initial["labels"] = ", ".join(self.instance.labels or [])
            # The engine decides which sandboxes the host's records belong to.
            self.fields["engine"].disabled = True

    def clean_labels(self) -> list[str]:
        raw = self.cleaned_data.get("labels") or ""
        labels = sorted({part.strip().lower() for part in raw.split(",") if part.strip()})
        bad = [label for label in labels if not LABEL.match(label)]
        if bad:
            raise forms.ValidationError(
                _("Labels are short lowercase names (letters, digits, - _ .): not %(bad)s"),
                params={"bad": ", ".join(bad)},
            )
        return labels

    def clean_max_cpus(self) -> float:
        value = self.cleaned_data["max_cpus"]
        if value < 0:
            raise forms.ValidationError(_("CPUs are 0 (not counted) or more."))
        return value

    def clean(self):
        data = super().clean()
        engine = data.get("engine") or self.instance.engine
        endpoint = (data.get("endpoint") or "").strip()
        data["endpoint"] = endpoint
        if endpoint and engine in SCHEMES and not endpoint.startswith(SCHEMES[engine]):
            self.add_error(
                "endpoint",
                _("A %(engine)s host's address starts with %(schemes)s.")
                % {"engine": Engine(engine).label, "schemes": ", ".join(SCHEMES[engine])},
            )
        tls = data.get("tls_ca") and data.get("tls_cert") and data.get("tls_key")
        if engine == Engine.DOCKER and endpoint.startswith("tcp://") and not tls:
            # A Docker Engine on an open TCP port is root on that machine for anyone.
            self.add_error(
                "endpoint",
                _(
                    "A Docker Engine reached over tcp:// needs TLS: give the CA, the "
                    "client certificate and its key."
                ),
            )
        for field in ("tls_ca", "tls_cert", "tls_key"):
            path = (data.get(field) or "").strip()
            data[field] = path
            if path and not os.access(path, os.R_OK):
                self.add_error(field, _("The site cannot read %(path)s.") % {"path": path})
        return data

    def save(self, commit: bool = True) -> Host:
        host = super().save(commit=False)
        host.labels = self.cleaned_data["labels"]
        if not host.backend:
            host.backend = host.engine  # the configured engine's class and options
        if commit:
            host.save()
        return host


class PoolForm(forms.ModelForm):
    class Meta:
        model = Pool
        fields = ["name", "description"]
