"""django-axes' unlocking commands, audited: `manage.py axes_reset`, `axes_reset_ip`,
`axes_reset_username` and `axes_reset_ip_username` take a required `--by NAME` and write a
`security.unlock` audit row for each lockout they lift (accounts.signin.lockouts_lift).

A separate app so that it can stand before axes in INSTALLED_APPS: of two apps with a command of
one name, Django runs the one listed first. accounts itself stays after axes, whose signal
receivers must run before accounts' (accounts.auth_signals reads what axes counted).
"""
