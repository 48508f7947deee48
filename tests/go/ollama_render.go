// Renders Ollama TEMPLATEs (Go text/template) over chats, as Ollama does with .Messages (and .System): a JSON
// list of {template, messages} on stdin, a JSON list of the rendered texts on stdout. The tests compare them
// with the Jinja templates' renderings. Go's text/template, not Ollama itself.
package main

import (
	"encoding/json"
	"os"
	"strings"
	"text/template"
)

type message struct {
	Role    string `json:"role"`
	Content string `json:"content"`
}

type request struct {
	Template string    `json:"template"`
	Messages []message `json:"messages"`
}

func main() {
	var reqs []request
	if err := json.NewDecoder(os.Stdin).Decode(&reqs); err != nil {
		panic(err)
	}
	out := []string{}
	for _, req := range reqs {
		out = append(out, render(req))
	}
	if err := json.NewEncoder(os.Stdout).Encode(out); err != nil {
		panic(err)
	}
}

func render(req request) string {
	tmpl := template.Must(template.New("ollama").Parse(req.Template))
	system := ""
	for _, m := range req.Messages {
		if m.Role == "system" {
			system = m.Content
		}
	}
	var b strings.Builder
	if err := tmpl.Execute(&b, map[string]any{"Messages": req.Messages, "System": system}); err != nil {
		panic(err)
	}
	return b.String()
}
