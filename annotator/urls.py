from django.urls import path

from annotator.views import annotate, hit_form, mturk_hit

urlpatterns = [
    path("hit/<uuid:key>/", mturk_hit.mturk_hit, name="mturk-hit"),
    path("hit/<uuid:key>/img/<int:position>", hit_form.hit_image, name="hit-image"),
    path("annotate/", annotate.home, name="annotate-home"),
    path("annotate/next/", annotate.next_hit, name="annotate-next"),
    path("annotate/a/<str:external_id>/", annotate.assignment_page, name="annotate-assignment"),
    path("annotate/lab/<str:token>/", annotate.lab_link, name="annotate-lab"),
]
