schema_version = 1

gateway {
  state_dir  = "/opt/clawpatrol"
  public_url = "https://gw.example.test/ "
  wireguard { subnet_cidr = "10.55.0.0/24" }
}

endpoint "https" "github" { hosts = ["api.github.com"] }
endpoint "postgres" "pg"  { host = "pg.internal:5432" }

credential "bearer_token" "github_pat" { endpoint = https.github }
credential "postgres_credential" "pg-ro" {
  endpoint = postgres.pg
  user     = "agent_ro"
}

approver "human_approver" "ops" { channel = "#ops" }   # dashboard-only

rule "github-reads" {
  endpoint  = https.github
  condition = "http.method in ['GET', 'HEAD']"
  verdict   = "allow"
}
rule "github-writes" {
  endpoint  = https.github
  condition = "http.method in ['POST', 'PUT', 'PATCH', 'DELETE']"
  approve   = [human_approver.ops]
}
rule "pg-default" {
  endpoint = postgres.pg
  priority = -100
  verdict  = "deny"
  reason   = "explicit allow required"
}

profile "default" {
  credentials = [bearer_token.github_pat, postgres_credential.pg-ro]
}
