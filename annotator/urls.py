from django.urls import path

from annotator.crowds import crowd_urlpatterns
from annotator.views import annotate, dashboard, dashboard_actions, hit_form

urlpatterns = [
    path("hit/<uuid:key>/img/<int:position>", hit_form.hit_image, name="hit-image"),
    path("annotate/", annotate.home, name="annotate-home"),
    path("annotate/next/", annotate.next_hit, name="annotate-next"),
    path("annotate/a/<str:external_id>/", annotate.assignment_page, name="annotate-assignment"),
    path("annotate/lab/<str:token>/", annotate.lab_link, name="annotate-lab"),
    *crowd_urlpatterns(),  # the pages each crowd's workers land on (annotator/crowds/)
]

urlpatterns += [
    path("dashboard/", dashboard.index, name="dashboard"),
    path("dashboard/layer/<int:layer_id>/", dashboard.layer_grid, name="dashboard-layer"),
    path("dashboard/layer/<int:layer_id>/netdissect/", dashboard.netdissect, name="dashboard-netdissect"),
    path("dashboard/unit/<int:unit_id>/", dashboard.unit_detail, name="dashboard-unit"),
    path("dashboard/unit/<int:unit_id>/review/", dashboard_actions.unit_review, name="dashboard-unit-review"),
    path("dashboard/answer/<int:answer_id>/reject/", dashboard_actions.answer_reject, name="dashboard-answer-reject"),
    path(
        "dashboard/answer/<int:answer_id>/approve/", dashboard_actions.answer_approve, name="dashboard-answer-approve"
    ),
    path("dashboard/answer/<int:answer_id>/bonus/", dashboard_actions.answer_bonus, name="dashboard-answer-bonus"),
    path("dashboard/worker/<int:worker_id>/", dashboard_actions.worker_action, name="dashboard-worker"),
    path(
        "dashboard/campaign/<int:campaign_id>/action/",
        dashboard_actions.campaign_action,
        name="dashboard-campaign-action",
    ),
    path("dashboard/campaign/<int:campaign_id>/", dashboard.campaign_detail, name="dashboard-campaign"),
    path("dashboard/network/<int:network_id>/figures/", dashboard.figure_page, name="dashboard-figures"),
    path(
        "dashboard/network/<int:network_id>/figures/<str:kind>.<str:fmt>",
        dashboard.figure_file,
        name="dashboard-figure",
    ),
    path("dashboard/media/<path:path>", dashboard.media, name="dashboard-media"),
]
