schema_version = 1

gateway {
  dashboard_listen        = "127.0.0.1:8080"
  public_url              = "https://gw.example.test/"
  state_dir               = "/var/lib/clawpatrol"
  dashboard_session_ttl   = "12h"
  dashboard_config_writes = true
  resolver                = "1.1.1.1:53"
  log_path                = "/var/log/clawpatrol.log"
  telemetry               = false
  session_keep            = "1h30m"
  actions_keep            = "off"
  proxy_listen            = "127.0.0.1:3128"
  transparent_listen      = "127.0.0.1:3129"
  management_listen       = "127.0.0.1:3130"

  limits {
    body_buffer  = "2MiB"
    body_storage = "8K"
  }
  genai_telemetry { include_message_content = true }
  wireguard {
    subnet_cidr        = "10.55.0.0/24"
    listen_port        = 51821
    host_loopback_port = 8444
    endpoint           = "gw.example.test:51821"
    interface          = "wg0"
    server_pub         = "pubkey"
  }
  tailscale {
    authkey             = "tskey"
    hostname            = "cp"
    control_url         = "https://hs.example.test"
    tags                = ["tag:client"]
    operators           = ["alice@example.com", "*@corp.example"]
    funnel              = true
    oauth_client_id     = "{{secret:TS_ID}}"
    oauth_client_secret = "{{secret:TS_SECRET}}"
  }
}

defaults {
  unknown_host     = "deny"
  llm_fail_mode    = "closed"
  llm_cache_ttl    = 60
  human_timeout    = 120
  human_on_timeout = "deny"
  profile          = profile.dev
}

plugin "smtp" {
  source     = "github.com/acme/cp-smtp"
  version    = "~> 1.2"
  provenance = "require"
  network    = "outbound"
  sandbox    = "enforce"
  read_paths = ["/etc/ssl", "~/certs"]
}

endpoint "https" "github" {
  hosts       = ["api.github.com", "*.githubusercontent.com", "uploads.github.com:443"]
  description = "GitHub API"
  retention   = "168h"
}
endpoint "https" "internal" {
  hosts   = ["git.internal"]
  ca_cert = "<<file:ca.pem>>"
}
endpoint "openai_codex_https" "codex" { hosts = ["chatgpt.com"] }
endpoint "kubernetes" "eks" {
  server       = "ABC.gr7.us-east-1.eks.amazonaws.com"
  ca_cert      = "<<file:ca.pem>>"
  cluster_name = "prod"
  region       = "us-east-1"
  tunnel       = kubernetes_port_forward.kpf
}
endpoint "postgres" "pg" {
  host      = "pg.internal:5432"
  sslmode   = "verify-full"
  listen    = "127.0.0.1:5433"
  agent_tls = true
  retention = "0"
}
endpoint "clickhouse_native" "ch" {
  hosts                      = ["ch1.internal", "ch2.internal:9441"]
  tls                        = true
  accept_invalid_certificate = true
  listen                     = "127.0.0.1:9001"
}
endpoint "clickhouse_https" "chh" { hosts = ["ch.internal:8443"] }
endpoint "ssh" "box" {
  hosts  = ["box.internal:22"]
  listen = "127.0.0.1:2222"
  tunnel = ssh_port_forward.bastion
}

credential "anthropic_manual_key" "anth" {
  endpoint    = https.github
  placeholder = "sk-ant-placeholder"
}
credential "anthropic_oauth_subscription" "anth-sub" { endpoint = https.internal }
credential "aws_credential" "aws" { endpoint = kubernetes.eks }
credential "basic_auth" "basic" {
  endpoint = https.internal
  username = "bob"
  placeholder = "basic-ph"
}
credential "bearer_token" "pat" {
  endpoints       = [https.github, https.internal]
  idempotency_key = true
  description     = "GitHub PAT"
}
credential "clickhouse_credential" "chc" {
  endpoint = clickhouse_native.ch
  user     = "agent"
  database = "analytics"
}
credential "cookie_token" "cookie" { cookie_name = "session" }
credential "discord_bot_token" "discord" {}
credential "gemini_api_key" "gemini" {}
credential "github_oauth" "gh-oauth" {}
credential "google_gke_credential" "gke" {}
credential "header_token" "hdr" {
  header = "X-Api-Key"
  prefix = "Key "
}
credential "mtls_credential" "mtls" {}
credential "notion_mcp_oauth" "notion-mcp" {}
credential "notion_oauth" "notion" {}
credential "openai_codex_oauth" "codex-oauth" { endpoint = openai_codex_https.codex }
credential "passthrough" "pass" {}
credential "postgres_credential" "pg-ro" {
  endpoint = postgres.pg
  user     = "agent_ro"
  database = "app"
}
credential "postgres_credential" "pg-rw" {
  endpoint = postgres.pg
  user     = "agent_rw"
}
credential "slack_tokens" "slack" {}
credential "ssh_key" "sshk" { endpoint = ssh.box }
credential "tailscale_auth" "tsa" {}
credential "telegram_bot_token" "tg" {}

approver "llm_approver" "judge" {
  model      = "claude-sonnet"
  credential = anthropic_manual_key.anth
  base_url   = "http://127.0.0.1:9999"
  policy     = <<-EOT
    Allow read-only requests.
    Deny anything else.
  EOT
}
approver "human_approver" "ops" {
  channel           = "#ops"
  credential        = slack_tokens.slack
  timeout           = 300
  require_approvers = 1
  interactive       = true
  classifier        = llm_approver.judge
  message           = "{{method}} {{host}}"
  sync_wait_timeout = "20s"
  async_grant {
    enabled            = true
    approved_retry_ttl = "10m"
    fingerprint_body   = "raw"
    max_body_bytes     = 65536
  }
}

tunnel "local_command" "proxy" {
  command       = ["cloud-sql-proxy", "--port", "6543"]
  listen        = "127.0.0.1:6543"
  ready_probe   = "tcp"
  ready_timeout = "45s"
  env           = { GOOGLE_APPLICATION_CREDENTIALS = "/etc/sa.json" }
  keepalive     = "always"
}
tunnel "ssh_port_forward" "bastion" {
  bastion    = "bastion.example.test:22"
  user       = "jump"
  credential = ssh_key.sshk
  share      = "per_conn"
  keepalive  = "10m"
}
tunnel "ssh_port_forward" "inner" {
  via        = ssh_port_forward.bastion
  user       = "jump2"
  credential = ssh_key.sshk
}
tunnel "kubernetes_port_forward" "kpf" {
  port         = 5432
  selector     = { app = "pg" }
  context      = "prod"
  namespace    = "db"
  cleanup      = "keep"
  server       = "k8s.example.test:6443"
  ca_cert      = "<<file:ca.pem>>"
  cluster_name = "prod"
  region       = "eu-west-1"
  credential   = aws_credential.aws
}
tunnel "tailscale" "ts" {
  authkey             = "tskey-x"
  oauth_client_secret = "secret"
  control_url         = "https://hs.example.test"
  hostname            = "cp-tunnel"
  state_dir           = "/var/lib/cp/ts"
  tags                = ["tag:cp"]
  credential          = tailscale_auth.tsa
  keepalive           = "0"
}

rule "gh-read" {
  endpoints = [https.github, https.internal]
  condition = "http.method == 'GET'"
  credential = bearer_token.pat
  verdict   = "allow"
}
rule "gh-write" {
  endpoint = https.github
  priority = 10
  disabled = true
  condition = <<EOT
http.method == "POST"
EOT
  approve = [llm_approver.judge, human_approver.ops, builtin.dashboard]
}
rule "pg-deny" {
  endpoint = postgres.pg
  priority = -100
  verdict  = "deny"
  reason   = "no"
}

profile "dev" {
  credentials = [
    bearer_token.pat,
    anthropic_manual_key.anth,
    basic_auth.basic,
    postgres_credential.pg-ro,
    { credential = postgres_credential.pg-rw, database = "app2" },
    clickhouse_credential.chc,
  ]
  hitl_async_grants = true
}
