from django.urls import path

from example_project.demo import views

urlpatterns = [
    path("", views.visitor_counter, name="visitors"),
]
