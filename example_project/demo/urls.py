from django.urls import path

from example_project.demo import views

app_name = "demo"
urlpatterns = [
    path("", views.index, name="index"),
    path("visitors/", views.visitor_counter, name="visitors"),
    path("cart/", views.checkout, name="cart"),
    path("counter/", views.counter_page, name="counter"),
    path("counter/load/", views.counter_load, name="counter-load"),
    path("counter/increment/", views.counter_increment, name="counter-increment"),
    path("counter/end/", views.end_session, name="counter-end"),
    path("counter/closed/", views.closed_log, name="counter-closed"),
    path("credentials/", views.credentials, name="credentials"),
    path("credentials/password/", views.load_password, name="password"),
    path("credentials/password/save/", views.save_password, name="password-save"),
    path("credentials/generate/", views.generate, name="generate"),
    path("scores/", views.score_tracker, name="scores"),
    path("chat/", views.chat_page, name="chat"),
    path("chat/say/", views.chat_say, name="chat-say"),
    path("poll/", views.poll, name="poll"),
    path("poll/ask/", views.poll_ask, name="poll-ask"),
    path("poll/vote/", views.poll_vote, name="poll-vote"),
    path("poll/events/", views.poll_events, name="poll-events"),
]
