rule "b-first" {
  endpoint = https.api
  verdict  = "allow"
}

rule "a-second" {
  endpoint = https.api
  verdict  = "deny"
}
