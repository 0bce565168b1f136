from django.contrib import admin

from stats.models import PlateEstimate, StationArea


@admin.register(PlateEstimate)
class PlateEstimateAdmin(admin.ModelAdmin):
    list_display = ["township", "year", "estimated_bikes", "method", "source", "entered_by", "entered_at"]
    list_filter = ["year", "method"]
    readonly_fields = ["source", "entered_by", "entered_at"]

    def save_model(self, request, obj, form, change):
        obj.entered_by = request.user
        obj.source = PlateEstimate.Source.FORM
        super().save_model(request, obj, form, change)


@admin.register(StationArea)
class StationAreaAdmin(admin.ModelAdmin):
    list_display = ["township", "station"]
