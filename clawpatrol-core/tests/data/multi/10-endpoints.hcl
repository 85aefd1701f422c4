endpoint "https" "api" { hosts = ["api.example.com"] }

rule "z-zero" {
  endpoint = https.api
  verdict  = "deny"
}
