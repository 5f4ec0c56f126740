"""Template context shared by every shop page."""

from django.http import HttpRequest

from shop.selectors import category_list


def shop(request: HttpRequest) -> dict:
    """Categories for the navigation bar."""
    return {"nav_categories": category_list()}
