package main

import (
	"crypto/sha256"
	"encoding/hex"
	"net/http"
)

// testSecret is the conversation secret of the pages in these tests: their
// conversation starts carry tokenContext, the document fetches present it.
const testSecret = "test-conversation-secret"

// tokenContext is the context member of a conversation start that carries
// the hash of testSecret.
var tokenContext = func() string {
	h := sha256.Sum256([]byte(testSecret))
	return `"context":{"prechat":{"tokenHash":"` + hex.EncodeToString(h[:]) + `"}}`
}()

// getDocument fetches a document as the page that started its
// conversation does, with testSecret.
func getDocument(url string) (*http.Response, error) {
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("X-Prechat-Token", testSecret)
	return http.DefaultClient.Do(req)
}
