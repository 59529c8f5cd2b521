from django.conf import settings
from django.conf.urls.static import static
from django.contrib import admin
from django.urls import include, path
from django.views.generic import RedirectView

from annotator.views import accounts

urlpatterns = [
    path("", RedirectView.as_view(pattern_name="annotate-home"), name="root"),
    path("admin/", admin.site.urls),
    path("accounts/password_reset/", accounts.PasswordResetView.as_view(), name="password_reset"),
    path("accounts/", include("django.contrib.auth.urls")),
    path("", include("annotator.urls")),
] + static(settings.MEDIA_URL, document_root=settings.MEDIA_ROOT)
