from django.urls import path

from web import map_views, owner_views

app_name = "web"

urlpatterns = [
    # Officer map
    path("map/", map_views.map_page, name="map"),
    path("map/markers.json", map_views.map_markers, name="map-markers"),
    path("map/vehicles/<int:vehicle_id>/card.json", map_views.map_card, name="map-card"),
    path("map/trace/<int:vehicle_id>/", map_views.trace_page, name="trace"),
    path("map/crime-scene/", map_views.crime_scene_page, name="crime-scene"),
    # Owner pages
    path("my/", owner_views.my_bikes, name="owner-bikes"),
    path("my/bikes/<int:vehicle_id>/policy/", owner_views.policy, name="owner-policy"),
    path("my/bikes/<int:vehicle_id>/position/", owner_views.position, name="owner-position"),
    path("my/report-theft/", owner_views.report_theft, name="owner-report-theft"),
    path("my/reports/<int:report_id>/", owner_views.report_receipt, name="owner-report"),
    path("my/claims/", owner_views.my_claims, name="owner-claims"),
    path("my/claims/<int:claim_id>/", owner_views.my_claim, name="owner-claim"),
]
