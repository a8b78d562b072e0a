from axes.admin import AccessAttemptAdmin
from django.contrib import admin, messages
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from apps.accounts.models import ApiToken

# django-axes (the login throttle) names two columns of its lockouts after their methods:
# give them words the site's catalog translates.
admin.display(description=_("status"))(AccessAttemptAdmin.status)
admin.display(description=_("expires at"))(AccessAttemptAdmin.expiration)


@admin.register(ApiToken)
class ApiTokenAdmin(admin.ModelAdmin):
    """Tokens can be looked at and revoked (deleted) here, nothing else. Only their hash
    is stored, and it is not shown at all: the beginning of the token names it."""

    list_display = ("name", "user", "prefix", "created_at", "last_used_at")
    list_select_related = ("user",)
    search_fields = ("name", "user__username", "prefix")
    fields = ("user", "name", "prefix", "created_at", "last_used_at")
    readonly_fields = fields
    actions = ["revoke"]

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def get_actions(self, request):
        # "Revoke" is the delete action in words that say what it does to a script.
        actions = super().get_actions(request)
        actions.pop("delete_selected", None)
        return actions

    @admin.action(description=_("Revoke the selected tokens"), permissions=["delete"])
    def revoke(self, request, queryset):
        n, _per_model = queryset.delete()
        message = ngettext("%(n)d token revoked.", "%(n)d tokens revoked.", n) % {"n": n}
        self.message_user(request, message, messages.SUCCESS)
