from tests.console.helpers import get


def test_admin_signs_in_with_password_and_totp_and_sees_every_tenant(console):
    console.add_user("admin@msp.example", "msp_admin", [])
    client = console.client()
    response = console.login(client, "admin@msp.example")
    assert response.status_code == 302, response.get_data(as_text=True)
    page = get(client, "/console/")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert "acme-corp" in html and "globex" in html
