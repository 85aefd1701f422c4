schema_version = 1
endpoint "https" "gh" { hosts = ["api.github.com"] }
endpoint "ssh" "box" { hosts = ["box.example.com"] }
approver "human_approver" "ops" { channel = "#ops" }
rule "reads" {
  endpoint  = https.gh
  condition = "http.method in ['GET', 'HEAD']"
  verdict   = "allow"
}
rule "writes" {
  endpoint  = https.gh
  condition = "http.method == 'POST'"
  approve   = [human_approver.ops, builtin.dashboard]
}
rule "default" {
  endpoint = https.gh
  priority = -100
  verdict  = "deny"
}
rule "body" {
  endpoint  = https.gh
  priority  = 10
  condition = "http.method == 'POST' && http.body_json.archived == true"
  verdict   = "deny"
  reason    = "archiving needs a human"
}
rule "no-pty" {
  endpoint  = ssh.box
  condition = "ssh.verb == 'pty'"
  verdict   = "deny"
  reason    = "no terminals"
}
