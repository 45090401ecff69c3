from django.urls import path

from . import views

urlpatterns = [
    path("cart/add/", views.add_item),
    path("cart/", views.show_cart),
]
