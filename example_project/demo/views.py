from django.shortcuts import render

from example_project.demo.state import visitors


def visitor_counter(request):
    """The seed's visitor counter: every page load counts, across every worker."""
    return render(request, "demo/visitors.html", {"visitors": visitors.incr()})
