"""The demo pages: plain Django views over the state declared in demo/state.py."""

from __future__ import annotations

import secrets

from django import forms
from django.http import HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.template.loader import render_to_string
from django.utils.html import escape
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_POST

from example_project.demo.demos import DEMOS
from example_project.demo.state import (
    cart,
    cart_count,
    chat,
    closed_counters,
    counters,
    password,
    poll_question,
    poll_votes,
    scores,
    username,
    visitors,
)
from statekit.lifecycle.resources import drain
from statekit.live.sse import events_view


def index(request):
    return render(request, "demo/index.html", {"demos": DEMOS.values()})


# 1. Visitor counter -------------------------------------------------------------------------


def visitor_counter(request):
    """Like Gradio's demo.load(increment_counter): every page load counts."""
    return render(request, "demo/visitors.html", {"visitors": visitors.incr()})


# 2. Checkout cart ---------------------------------------------------------------------------

ITEMS = ["Cereal", "Milk", "Orange Juice", "Water"]


def checkout(request):
    if request.method == "POST":
        if "empty" in request.POST:
            cart.delete(request)
        else:
            chosen = [item for item in request.POST.getlist("items") if item in ITEMS]
            cart.update(request, lambda items: items + chosen)  # atomic read-modify-write
        return redirect("demo:cart")
    context = {"items": ITEMS, "cart": cart.get(request), "count": cart_count.get(request)}
    return render(request, "demo/cart.html", context)


# 3. A per-tab object that cannot be serialized --------------------------------------------


def counter_page(request):
    return render(request, "demo/counter.html")


@require_POST
def counter_load(request):
    """Like Gradio's demo.load(initialize_instance): this page load's own counter."""
    return counter_json(counters.get(request))  # built now; closed when this page closes


@require_POST
def counter_increment(request):
    counter = counters.get(request)  # this tab's object (the request carries its page id)
    counter.increment()
    return counter_json(counter)


@require_POST
def end_session(request):
    request.session.flush()  # the session ends: its tabs' objects close (as at logout)
    return redirect("demo:counter")


@require_GET
def closed_log(request):
    drain()  # let statekit's background thread run the closes queued so far
    return JsonResponse({"closed": list(closed_counters)})


def counter_json(counter):
    drain()
    return JsonResponse(
        {
            "counter": {"id": counter.id, "created": counter.created, "count": counter.count},
            "closed": list(closed_counters),
        }
    )


# 4. Saved username and password ------------------------------------------------------------


class PasswordForm(forms.Form):
    password = forms.CharField(max_length=200, required=False, strip=False)


@never_cache
@require_GET
def load_password(request):
    """The page asks: its request carries the encrypted value, which only the server reads."""
    return JsonResponse({"password": password.get(request)})


@require_POST
def save_password(request):
    form = PasswordForm(request.POST)
    if not form.is_valid():
        return JsonResponse({"errors": form.errors}, status=400)
    password.set(request, form.cleaned_data["password"])  # encrypted, sent with the response
    return JsonResponse({"saved": True})


@require_POST
def generate(request):
    """Gradio's demo's "Generate Randomly" button, written by the server into the browser."""
    username.set(request, f"user-{secrets.token_hex(4)}")
    password.set(request, secrets.token_urlsafe(12))
    return JsonResponse({"username": username.get(request), "password": password.get(request)})


def credentials(request):
    return render(request, "demo/credentials.html")


# 5. Score tracker ---------------------------------------------------------------------------


class ScoreForm(forms.Form):
    score = forms.IntegerField(min_value=-(10**9), max_value=10**9)


def score_tracker(request):
    form = ScoreForm(request.POST or None)
    if form.is_valid():
        score = form.cleaned_data["score"]
        scores.update(lambda scores: [*scores, score])  # atomic: no concurrent score is lost
        return redirect("demo:scores")
    everyone = scores.get()
    top = sorted(everyone, reverse=True)[:3]
    return render(request, "demo/scores.html", {"form": form, "top": top, "count": len(everyone)})


# 6. Chat history per tab --------------------------------------------------------------------


class MessageForm(forms.Form):
    message = forms.CharField(max_length=500)


def chat_page(request):
    return render(request, "demo/chat.html", {"form": MessageForm()})


@require_POST
def chat_say(request):
    form = MessageForm(request.POST)
    if not form.is_valid():
        return JsonResponse({"errors": form.errors}, status=400)
    message = form.cleaned_data["message"]
    history = chat.update(request, lambda history: [*history, message])  # this page's
    return JsonResponse({"current": message, "previous": history[-2::-1]})


# 7. A live poll with htmx ------------------------------------------------------------------

POLL_OPTIONS = 8  # at most: a vote for a ninth option is not counted


class QuestionForm(forms.Form):
    question = forms.CharField(max_length=120)


class VoteForm(forms.Form):
    option = forms.CharField(max_length=60)


def poll(request):
    context = {"question": poll_question.get(), "rows": poll_rows(poll_votes.get())}
    return render(request, "demo/poll.html", context)


@require_POST
def poll_ask(request):
    form = QuestionForm(request.POST)
    if not form.is_valid():
        return JsonResponse({"errors": form.errors}, status=400)
    poll_question.set(form.cleaned_data["question"])
    return HttpResponse(status=204)  # every page, this one too, is sent the change


@require_POST
def poll_vote(request):
    form = VoteForm(request.POST)
    if not form.is_valid():
        return JsonResponse({"errors": form.errors}, status=400)
    option = form.cleaned_data["option"]
    poll_votes.update(lambda votes: counted(votes, option))  # atomic: no vote is lost
    return HttpResponse(status=204)


def counted(votes, option):
    if option not in votes and len(votes) >= POLL_OPTIONS:
        return votes
    return {**votes, option: votes.get(option, 0) + 1}


def poll_rows(votes):
    """(option, votes), the most voted first."""
    return sorted(votes.items(), key=lambda row: (-row[1], row[0]))


def poll_html(variable, value):
    """What htmx swaps in: the question as text, the votes rendered by a template."""
    if variable is poll_question:
        return escape(value)  # text, never markup
    return render_to_string("demo/poll_results.html", {"rows": poll_rows(value)})


# One stream per page, for both: sent to every page at each change, whoever made it.
poll_events = events_view(render=poll_html)
