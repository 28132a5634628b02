package mapping

import (
	"fmt"
	"strings"
)

// SettingsWarning is something in valid settings that cannot work as
// written once it reaches Salesforce. "processor settings check" prints
// them; the service runs with them.
type SettingsWarning struct {
	// Code names the kind of warning: one of the Warn… constants.
	Code string `json:"code"`
	// Field is the setting, as FieldError names it:
	// "caseMappings[0].value.messagingField".
	Field string `json:"field"`
	// Problem says what goes wrong and what to do instead.
	Problem string `json:"problem"`
}

func (w SettingsWarning) String() string { return w.Field + ": " + w.Problem }

// The codes of SettingsWarning.
const (
	// WarnMessagingFieldTwice: two mappings feed hidden fields whose names
	// differ only in letter case, which Salesforce takes for one parameter.
	WarnMessagingFieldTwice = "messaging_field_twice"
	// WarnMessagingFieldName: a messagingField Salesforce rejects as an API
	// name (two underscores in a row, or one at the end).
	WarnMessagingFieldName = "messaging_field_name"
	// WarnMessagingValueObject: a hidden field fed by a trait or property
	// that Segment's spec makes an object or array: the flow would get JSON
	// text.
	WarnMessagingValueObject = "messaging_value_object"
	// WarnMessagingValueText: a hidden field fed by a number, boolean or
	// date (by Segment's spec, or the Salesforce field it is for): the flow
	// receives it as text and must convert it.
	WarnMessagingValueText = "messaging_value_text"
	// WarnMessagingNotTargeted: mappings have a messagingField but products
	// does not include messaging, so no document carries them.
	WarnMessagingNotTargeted = "messaging_not_targeted"
	// WarnMessagingNothingSent: products include messaging, but no mapping
	// feeds a hidden or visible pre-chat field.
	WarnMessagingNothingSent = "messaging_nothing_sent"
)

// specObjects are the traits and properties Segment's spec makes objects or
// arrays, by the entity whose mappings read them: identify's address and
// company, group's address, and the products of e-commerce events.
var specObjects = map[Entity]map[string]bool{
	EntityContact: {"address": true, "company": true},
	EntityCase:    {"products": true},
	EntityAccount: {"address": true},
}

// specNumbers are the traits Segment's spec makes numbers: identify's age,
// group's employees.
var specNumbers = map[Entity]map[string]bool{
	EntityContact: {"age": true},
	EntityAccount: {"employees": true},
}

// typedField is a standard Salesforce field that is not text: its type,
// and the formula that turns a Text flow variable (%s) into it.
type typedField struct{ kind, convert string }

// typedFields are the standard fields of the mapped entities that are not
// text.
var typedFields = map[Entity]map[string]typedField{
	EntityContact: {
		"Birthdate":          {"a date", "DATEVALUE({!%s})"},
		"DoNotCall":          {"a checkbox", `{!%s} = "true"`},
		"HasOptedOutOfEmail": {"a checkbox", `{!%s} = "true"`},
		"HasOptedOutOfFax":   {"a checkbox", `{!%s} = "true"`},
	},
	EntityCase: {
		"IsEscalated": {"a checkbox", `{!%s} = "true"`},
	},
	EntityAccount: {
		"AnnualRevenue":     {"a number", "VALUE({!%s})"},
		"NumberOfEmployees": {"a number", "VALUE({!%s})"},
	},
}

// Warnings lists what in s cannot work as written: for Messaging for Web,
// a hidden field mapped twice under names Salesforce does not tell apart, a
// field name Salesforce rejects, a value the Omni-Channel flow cannot
// receive as it is (flow parameters are String only), and messaging fields
// that no document carries or a Messaging deployment that receives
// nothing. It reads s only; s must be valid (ParseSettings, Validate).
func (s *Settings) Warnings() []SettingsWarning {
	var out []SettingsWarning
	warn := func(code, field, format string, args ...any) {
		out = append(out, SettingsWarning{Code: code, Field: field, Problem: fmt.Sprintf(format, args...)})
	}
	targeted := s.Targets(ProductMessaging)
	seen := map[string]string{} // lowercase name → path of its first mapping
	hidden, visible, firstField := 0, 0, ""
	for _, sec := range s.Sections() {
		for i, m := range sec.Mappings {
			path := fmt.Sprintf("%s[%d]", sec.Field, i)
			if m.Wrapped {
				path += ".value"
			}
			if _, ok := standardFields[sec.Entity][m.FieldName]; ok {
				visible++
			}
			f := m.MessagingField
			if f == "" {
				continue
			}
			hidden++
			field := path + ".messagingField"
			if firstField == "" {
				firstField = field
			}
			if !targeted {
				continue
			}
			if prev, ok := seen[strings.ToLower(f)]; ok {
				warn(WarnMessagingFieldTwice, field, "%q and the messagingField of %s differ only in letter case: Salesforce API names do not, so both mappings set one hidden field and the last one wins; give each its own parameter", f, prev)
			} else {
				seen[strings.ToLower(f)] = path
			}
			if strings.Contains(f, "__") || strings.HasSuffix(f, "_") {
				warn(WarnMessagingFieldName, field, "%q cannot be a Salesforce parameter API name (no two underscores in a row, none at the end): setHiddenPrechatFields would set a field the channel does not have", f)
			}
			src := m.Source()
			switch t, typed := typedFields[sec.Entity][m.FieldName]; {
			case specObjects[sec.Entity][src]:
				warn(WarnMessagingValueObject, field, "%s %q is an object or array in Segment's spec: the flow would receive it as JSON text; %s", sourceKind(sec.Entity), src, partOf(src))
			case typed:
				warn(WarnMessagingValueText, field, "%s.%s is %s, but flow parameters are String only: %s arrives as text (numbers as digits, booleans as true or false); give the flow a Text variable for it and convert it before setting the field: %s", sec.Entity, m.FieldName, t.kind, f, fmt.Sprintf(t.convert, f))
			case specNumbers[sec.Entity][src]:
				warn(WarnMessagingValueText, field, "%s %q is a number in Segment's spec, but flow parameters are String only: %s arrives as digits; give the flow a Text variable for it and convert it where a number is needed: VALUE({!%s})", sourceKind(sec.Entity), src, f, f)
			}
		}
	}
	switch {
	case !targeted && hidden > 0:
		warn(WarnMessagingNotTargeted, firstField, `%d mapping(s) have a messagingField, but products does not include "messaging": no document carries hidden pre-chat fields; add it to products`, hidden)
	case targeted && hidden == 0 && visible == 0:
		warn(WarnMessagingNothingSent, "products", `"messaging" is targeted, but no mapping has a messagingField and none feeds a visible standard field (Contact FirstName, LastName, Email, Case Subject): Messaging for Web receives nothing`)
	}
	return out
}

// sourceKind names what a mapping of the entity reads.
func sourceKind(e Entity) string {
	switch e {
	case EntityContact:
		return "the trait"
	case EntityAccount:
		return "the group trait"
	}
	return "the property"
}

// partOf says what to map instead of a spec object.
func partOf(src string) string {
	switch src {
	case "address":
		return `map one of its parts instead, such as "address.city"`
	case "company":
		return `map one of its parts instead, such as "company.name"`
	}
	return "map a property that holds one value instead"
}
