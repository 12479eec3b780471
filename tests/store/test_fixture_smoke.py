import psycopg


def test_app_role_sees_no_rows_without_a_tenant(database):
    with psycopg.connect(database.superuser_url, autocommit=True) as conn:
        conn.execute("INSERT INTO tenants (tenant_id, name) VALUES ('acme', 'Acme') ON CONFLICT DO NOTHING")
    with psycopg.connect(database.app_url) as conn:
        assert conn.execute("SELECT count(*) FROM tenants").fetchone()[0] == 0
        conn.execute("SELECT set_config('app.tenant_id', 'acme', true)")
        assert conn.execute("SELECT count(*) FROM tenants").fetchone()[0] == 1
