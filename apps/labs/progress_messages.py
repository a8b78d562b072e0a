"""Progress messages the backends report while a sandbox starts. The backends know nothing
of Django, so their English messages are listed here for makemessages; the events socket
translates them into each page's language."""

from django.utils.translation import gettext_noop

MESSAGES = [
    gettext_noop("Waiting for a free slot"),
    gettext_noop("checking the image"),
    gettext_noop("building the lab image"),
    gettext_noop("preparing the network"),
    gettext_noop("creating the container"),
    gettext_noop("starting the container"),
    gettext_noop("running the lab's setup"),
    gettext_noop("ready"),
    gettext_noop("preparing the disk"),
    gettext_noop("defining the virtual machine"),
    gettext_noop("booting the virtual machine"),
    gettext_noop("waiting for the guest to boot"),
    gettext_noop("waiting for the guest agent"),
]
