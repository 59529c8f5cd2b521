"""Account pages that differ from Django's: a password reset that says when its mail cannot be sent."""

from __future__ import annotations

import smtplib

from django.contrib.auth import views as auth_views
from django.contrib.auth.forms import PasswordResetForm
from django.core.mail import EmailMultiAlternatives, get_connection
from django.http import HttpResponse
from django.template import loader


class PasswordResetMailForm(PasswordResetForm):
    """Django's form logs a failed send and reports success; this one lets the failure reach the view."""

    def send_mail(
        self, subject_template_name, email_template_name, context, from_email, to_email, html_email_template_name=None
    ) -> None:
        subject = "".join(loader.render_to_string(subject_template_name, context).splitlines())
        message = EmailMultiAlternatives(
            subject, loader.render_to_string(email_template_name, context), from_email, [to_email]
        )
        if html_email_template_name is not None:
            message.attach_alternative(loader.render_to_string(html_email_template_name, context), "text/html")
        message.send()


class PasswordResetView(auth_views.PasswordResetView):
    """Security behavior: as Django's, it never says whether an address has an account; but when the
    mail server cannot be reached (checked before any address is looked up) or refuses the mail, the
    page says so (503) instead of claiming a mail was sent."""

    form_class = PasswordResetMailForm

    def form_valid(self, form: PasswordResetForm) -> HttpResponse:
        try:
            connection = get_connection(fail_silently=False)
            connection.open()
            connection.close()
            return super().form_valid(form)
        except (OSError, smtplib.SMTPException) as error:
            form.add_error(
                "email",
                f"The reset mail could not be sent ({error}). Nothing was sent: try again later, "
                "or ask the researcher to reset your password.",
            )
            return self.render_to_response(self.get_context_data(form=form), status=503)
