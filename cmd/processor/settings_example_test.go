package main

import (
	"fmt"
	"os"
)

// Example_settingsCheck is "processor settings check FILE" over a settings
// file as Segment exports it: it says the file is valid and shows what the
// browser receives for each mapping.
func Example_settingsCheck() {
	if err := settingsCmd([]string{"check", "testdata/settings.json"}, os.Stdout, os.Stdout); err != nil {
		fmt.Println(err)
	}
	// Output:
	// testdata/settings.json: valid
	//
	// Products: liveAgent
	//
	// Legacy Chat (liveagent)
	//   deployment.js  https://c.la3-c1cs-phx.salesforceliveagent.com/content/g/js/29.0/deployment.js
	//   init           https://d.la3-c1cs-phx.salesforceliveagent.com/chat, 5723D00000000F4, 00D3D000000DIdG
	//   enableLogging  false
	//
	// findOrCreate("Contact"), from identify traits: 1 mapping(s)
	//   SOURCE  DETAIL LABEL  SHOWN TO AGENT  FIELD          FIND  EXACT  CREATE
	//   email   "User Email"  yes             Contact.Email  yes   yes    yes
	//   setName(firstName + " " + lastName) when both traits are set
	//
	// findOrCreate("Case"), from the conversation start's properties: 1 mapping(s)
	//   SOURCE   DETAIL LABEL  SHOWN TO AGENT  FIELD         FIND  EXACT  CREATE
	//   subject  "Subject"     yes             Case.Subject  no    no     no
	//
	// findOrCreate("Account"), from group traits: 0 mapping(s)
	//
	// Only these fields leave the server; other traits and properties are never in a document.
}
