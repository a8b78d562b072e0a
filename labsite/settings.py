"""One flat settings file. Every knob is an environment variable with a working default:
with none set, the site runs on SQLite under var/ and an in-process channel layer."""

import os
from datetime import timedelta
from pathlib import Path

import dj_database_url

from labsite.env import envbool, envint, envlist, secret_key

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(os.environ.get("LABSITE_VAR_DIR", BASE_DIR / "var"))
CONTENT_DIR = Path(os.environ.get("LABSITE_CONTENT_DIR", BASE_DIR / "content"))

SECRET_KEY = secret_key(VAR_DIR)
DEBUG = envbool("DEBUG", False)
ALLOWED_HOSTS = envlist("ALLOWED_HOSTS", ["127.0.0.1", "localhost", "[::1]"])
CSRF_TRUSTED_ORIGINS = envlist("CSRF_TRUSTED_ORIGINS", [])
SECURE_COOKIES = envbool("SECURE_COOKIES", False)
SESSION_COOKIE_SECURE = CSRF_COOKIE_SECURE = SECURE_COOKIES
if envbool("BEHIND_TLS_PROXY", False):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")

INSTALLED_APPS = [
    "daphne",  # first, so runserver is Daphne's ASGI server
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "channels",
    "axes",
    "ninja",  # its Swagger UI files, served locally (no CDN)
    # Dependencies point one way: api → teaching, terminals → sessions → hosts, and every
    # app reads accounts and courses, which import none of the others.
    "apps.accounts",
    "apps.courses",
    "apps.hosts",
    "apps.sessions",
    "apps.pools",
    "apps.terminals",
    "apps.teaching",
    "apps.authoring",
    "apps.recordings",
    "apps.audit",
    "apps.metrics",
    "apps.dashboard",
    "apps.api",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "labsite.static_files.StaticFilesMiddleware",  # WhiteNoise, kept off the view path
    "django.contrib.sessions.middleware.SessionMiddleware",
    "labsite.locale.CookieLocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "apps.accounts.middleware.ApiTokenMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "axes.middleware.AxesMiddleware",  # last, as django-axes asks
]

ROOT_URLCONF = "labsite.urls"
ASGI_APPLICATION = "labsite.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.template.context_processors.i18n",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "apps.accounts.context_processors.roles",
            ],
        },
    },
]

DATABASES = {
    "default": dj_database_url.config(
        default=f"sqlite:///{VAR_DIR / 'db.sqlite3'}", conn_max_age=envint("DB_CONN_MAX_AGE", 0)
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # WAL and immediate transactions let the web process and the reconciler write side by side.
    # read_uncommitted matters only to an in-memory database shared between connections (the
    # test suite's), where a reader would otherwise lock a table against every writer at once.
    DATABASES["default"]["OPTIONS"] = {
        "init_command": (
            "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA read_uncommitted=true;"
        ),
        "transaction_mode": "IMMEDIATE",
        "timeout": 20,
    }
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

REDIS_URL = os.environ.get("REDIS_URL", "")
if REDIS_URL:
    CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.core.RedisChannelLayer",
            # redis-py 8 reads with a 5 s socket timeout by default, and channels_redis
            # blocks 5 s in BZPOPMIN waiting for a message: on a busy process the reply
            # came a little late and the socket died with 1011 (tests/production's storm).
            "CONFIG": {"hosts": [{"address": REDIS_URL, "socket_timeout": 30}]},
        }
    }
else:
    CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
]
# Login attempts are throttled per username and address (django-axes): after
# LOGIN_FAILURE_LIMIT wrong passwords the pair is locked for LOGIN_LOCKOUT_MINUTES.
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
AXES_FAILURE_LIMIT = envint("LOGIN_FAILURE_LIMIT", 5, minimum=1)
AXES_COOLOFF_TIME = timedelta(minutes=envint("LOGIN_LOCKOUT_MINUTES", 15, minimum=1))
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
AXES_LOCKOUT_TEMPLATE = "registration/locked_out.html"
# The client's address is REMOTE_ADDR: behind nginx, Daphne runs with --proxy-headers and
# nginx overwrites X-Forwarded-For with the address it saw (docs/deployment.md).
LOGIN_URL = "/accounts/login/"
LOGIN_REDIRECT_URL = "/"
LOGOUT_REDIRECT_URL = "/"

LANGUAGE_CODE = "zh-hans"
LANGUAGES = [("zh-hans", "简体中文"), ("en", "English")]
LOCALE_PATHS = [BASE_DIR / "locale"]
TIME_ZONE = os.environ.get("TIME_ZONE", "Asia/Shanghai")
USE_I18N = True
USE_TZ = True

STATIC_URL = "/static/"
STATIC_ROOT = VAR_DIR / "static"
STATICFILES_DIRS = [BASE_DIR / "frontend" / "dist"]
WHITENOISE_USE_FINDERS = True

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": "WARNING"},
    "loggers": {
        "apps": {"level": os.environ.get("LOG_LEVEL", "INFO")},
        "provisioning": {"level": os.environ.get("LOG_LEVEL", "INFO")},
    },
}

# --- Sandboxes -------------------------------------------------------------------------------
#: Every sandbox carries this in its labels; the reconciler owns only sandboxes with it.
LABSITE_SITE_NAME = os.environ.get("LABSITE_SITE_NAME", "labsite")
#: Engines, shaped like CHANNEL_LAYERS: a dotted BACKEND path and its OPTIONS.
LABSITE_BACKENDS = {
    "docker": {
        "BACKEND": "provisioning.docker.DockerBackend",
        "OPTIONS": {
            "base_url": os.environ.get("DOCKER_HOST", "unix:///var/run/docker.sock"),
            "max_workers": envint("DOCKER_MAX_WORKERS", 8, minimum=1),
        },
    },
    "libvirt": {
        "BACKEND": "provisioning.libvirt.LibvirtBackend",
        "OPTIONS": {
            "uri": os.environ.get("LIBVIRT_URI", "qemu:///system"),
            "templates_dir": str(VAR_DIR / "vm" / "templates"),
            "overlays_dir": str(VAR_DIR / "vm" / "overlays"),
            "virt_type": os.environ.get("LIBVIRT_VIRT_TYPE", "auto"),
            # Restore guests from booted snapshots (docs/vm-snapshots.md): the first start of
            # each template and size boots and has its snapshot built for the next ones.
            "use_snapshots": envbool("LABSITE_VM_SNAPSHOTS", True),
        },
    },
}
LABSITE_MAX_ACTIVE_SESSIONS = envint("LABSITE_MAX_ACTIVE_SESSIONS", 2, minimum=1)
LABSITE_IDLE_MINUTES = envint("LABSITE_IDLE_MINUTES", 30, minimum=1)
LABSITE_EXTEND_MINUTES = envint("LABSITE_EXTEND_MINUTES", 15, minimum=1)
LABSITE_MAX_EXTENSIONS = envint("LABSITE_MAX_EXTENSIONS", 3)
LABSITE_CHECK_TIMEOUT = envint("LABSITE_CHECK_TIMEOUT", 10, minimum=1)
LABSITE_RECONCILE_SECONDS = envint("LABSITE_RECONCILE_SECONDS", 10, minimum=1)
#: Warm pools (apps.pools): pool sandboxes in all, over every lab, at most; and how many
#: of them are started at the same time (refilling stays out of the way of cold starts).
LABSITE_WARM_POOL_MAX = envint("LABSITE_WARM_POOL_MAX", 100)
LABSITE_WARM_POOL_PARALLEL = envint("LABSITE_WARM_POOL_PARALLEL", 2, minimum=1)
#: Terminal tabs a student may open in one session.
LABSITE_MAX_TABS = envint("LABSITE_MAX_TABS", 4, minimum=1)
#: Seconds a sandbox may take to start (image build and setup script included) before the
#: start is given up; VMs boot slowly under software emulation.
LABSITE_START_TIMEOUT = {
    "container": envint("LABSITE_START_TIMEOUT", 300, minimum=10),
    "vm": envint("LABSITE_VM_START_TIMEOUT", 600, minimum=10),
}
#: The most one lab may ask for; a lab file asking for more is refused by the loader.
LABSITE_LAB_LIMITS = {
    "cpus": float(os.environ.get("LABSITE_LAB_MAX_CPUS", "2")),
    "memory_mib": envint("LABSITE_LAB_MAX_MEMORY_MIB", 4096, minimum=64),
    "pids": envint("LABSITE_LAB_MAX_PIDS", 1024, minimum=16),
    "disk_mib": envint("LABSITE_LAB_MAX_DISK_MIB", 8192, minimum=64),
}
#: Linux capabilities a lab file may add to a container. Never SYS_ADMIN, SYS_MODULE,
#: SYS_PTRACE, SYS_RAWIO, DAC_READ_SEARCH, SYS_BOOT, MAC_ADMIN or ALL: each is a way out.
LABSITE_ALLOWED_CAPABILITIES = envlist(
    "LABSITE_ALLOWED_CAPABILITIES",
    ["NET_ADMIN", "NET_RAW", "NET_BIND_SERVICE", "CHOWN", "DAC_OVERRIDE", "FOWNER", "FSETID",
     "KILL", "SETGID", "SETUID", "SETPCAP", "SETFCAP", "AUDIT_WRITE", "SYS_CHROOT", "MKNOD",
     "SYS_NICE", "SYS_RESOURCE", "IPC_LOCK", "SYS_TIME"],
)  # fmt: skip

# --- Terminal recordings (apps/recordings) ---------------------------------------------------
#: Every student terminal is recorded as asciicast v2, kept this many days, then pruned.
LABSITE_RECORDINGS = envbool("LABSITE_RECORDINGS", True)
LABSITE_RECORDING_DAYS = envint("LABSITE_RECORDING_DAYS", 30, minimum=1)
LABSITE_RECORDINGS_DIR = Path(os.environ.get("LABSITE_RECORDINGS_DIR", VAR_DIR / "recordings"))

# --- Host pools (apps/hosts) -----------------------------------------------------------------
#: A host that has not answered for this long has its sessions ended (HOST_DOWN) and their
#: students told why; until then they are left alone (a restart of the engine is not a loss).
LABSITE_HOST_GRACE_SECONDS = envint("LABSITE_HOST_GRACE_SECONDS", 120, minimum=1)

# --- Prometheus metrics (apps/metrics) ------------------------------------------------------
#: /metrics answers a request carrying ``Authorization: Bearer <token>``, or one from an
#: address listed here (e.g. "127.0.0.1,10.0.0.0/8"); with neither set, it answers nobody.
LABSITE_METRICS_TOKEN = os.environ.get("LABSITE_METRICS_TOKEN", "")
LABSITE_METRICS_ALLOW = envlist("LABSITE_METRICS_ALLOW", [])

CSRF_FAILURE_VIEW = "apps.api.views.csrf_failure"
