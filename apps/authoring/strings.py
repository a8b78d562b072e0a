"""The editor script's words, translated here (Django's catalog) and handed to the page as
JSON: the script has no literal of its own to translate."""

from __future__ import annotations

from django.utils.translation import gettext as _


def editor_strings() -> dict[str, str]:
    return {
        "saving": _("Saving…"),
        "saved": _("Saved."),
        "unsaved": _("Unsaved changes"),
        "no_changes": _("No unsaved change."),
        "overwrite": _("Overwrite the disk with my text"),
        "show_revisions": _("See the revisions"),
        "disk_changed": _(
            "These files changed on disk since you opened them. Reload to edit the new "
            "version (your unsaved changes here would be lost), or save to be told of the "
            "conflict."
        ),
        "reload": _("Reload"),
        "leave": _("You have unsaved changes."),
        "network": _("Could not reach the server. Check your connection and try again."),
        "preview_failed": _("The preview could not be rendered."),
        "running": _("Running the check in your sandbox…"),
        "passed": _("Passed"),
        "failed": _("Not passed"),
        "timed_out": _("Timed out"),
        "no_session": _("Start this lab"),
        "open_lab": _("Open the lab page (terminal)"),
        "starting": _("Starting your sandbox…"),
        "started": _("Your sandbox is running. Do the step in the lab page's terminal, then try."),
        "start_failed": _("The lab did not start: %(e)s"),
        "remove_step": _("Remove this step? Its files are deleted when you save."),
        "bad_slug": _("A step name is lowercase letters, digits and '-', e.g. write-file."),
        "step_title": _("New step"),
        "validating": _("Validating: starting a fresh sandbox of the saved lab…"),
        "validating_step": _("Validating: %(n)s step(s) done…"),
        "validate_ok": _("Every step works: its check fails before, its solution makes it pass."),
        "validate_broken": _("Broken steps: %(steps)s"),
        "validate_error": _("The validation could not run: %(e)s"),
        "step": _("Step"),
        "before": _("check before"),
        "solve_exit": _("solve exit"),
        "after": _("check after"),
        "seconds": _("seconds"),
        "problem": _("problem"),
        "output": _("output"),
        "yes": _("passes"),
        "no": _("fails"),
        "zipping": _("Packing the folder…"),
        "folder_empty": _("The folder is empty."),
    }
