from django.contrib import admin

from annotator import models


@admin.register(models.Network)
class NetworkAdmin(admin.ModelAdmin):
    list_display = ("name", "architecture", "input_size", "created_at")
    search_fields = ("name",)


@admin.register(models.Layer)
class LayerAdmin(admin.ModelAdmin):
    list_display = ("network", "name", "module_name", "num_units", "rf_theoretical_px")
    list_filter = ("network",)


@admin.register(models.Unit)
class UnitAdmin(admin.ModelAdmin):
    list_display = ("layer", "index")
    list_filter = ("layer__network", "layer")
    list_select_related = ("layer__network",)


@admin.register(models.ImageSet)
class ImageSetAdmin(admin.ModelAdmin):
    list_display = ("root",)


@admin.register(models.Image)
class ImageAdmin(admin.ModelAdmin):
    list_display = ("path", "image_set", "status")
    list_filter = ("status", "image_set")
    search_fields = ("path",)


@admin.register(models.Dissection)
class DissectionAdmin(admin.ModelAdmin):
    list_display = ("network", "stage", "created_at", "finished_at")


@admin.register(models.ActivationChunk)
class ActivationChunkAdmin(admin.ModelAdmin):
    list_display = ("dissection", "index", "first_image", "image_count", "done")


@admin.register(models.TopImage)
class TopImageAdmin(admin.ModelAdmin):
    list_display = ("unit", "rank", "image", "score")
    list_select_related = ("unit__layer__network", "image")
    raw_id_fields = ("unit", "image")


@admin.register(models.ImageSweep)
class ImageSweepAdmin(admin.ModelAdmin):
    list_display = ("dissection", "image", "occluded", "done", "seconds")
    raw_id_fields = ("image",)


@admin.register(models.ReceptiveField)
class ReceptiveFieldAdmin(admin.ModelAdmin):
    list_display = ("unit", "empirical_px", "images_used")
    list_select_related = ("unit__layer__network",)


@admin.register(models.Segmentation)
class SegmentationAdmin(admin.ModelAdmin):
    list_display = ("top_image", "coverage")
    raw_id_fields = ("top_image",)


@admin.register(models.UnitLabel)
class UnitLabelAdmin(admin.ModelAdmin):
    list_display = ("unit", "label", "category", "precision", "status")
    list_filter = ("status", "category")
