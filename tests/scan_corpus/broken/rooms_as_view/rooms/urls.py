from django.urls import path

from rest_helpers import as_view

from .views import Rooms

urlpatterns = [path("rooms/<room>/", as_view(Rooms))]
