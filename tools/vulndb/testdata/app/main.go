// Command app calls the symbols that tools/vulndb's test fixtures name.
package main

import (
	"fmt"
	"strconv"
)

func main() {
	fmt.Println(strconv.Quote("x"), strconv.Itoa(1))
}
