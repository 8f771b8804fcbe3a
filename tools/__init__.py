"""Developer tools that use the whole project (the load-and-fault run); nothing in the served packages imports them."""
