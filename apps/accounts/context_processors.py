from apps.accounts.roles import Role, role_of


def roles(request):
    role = role_of(request.user)
    return {
        "role": role,
        "is_instructor": role in (Role.INSTRUCTOR, Role.ADMIN),
        "is_site_admin": role == Role.ADMIN,
    }
