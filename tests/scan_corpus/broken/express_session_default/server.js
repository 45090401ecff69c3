const express = require("express");
const session = require("express-session");

const app = express();
app.use(session({ secret: process.env.SESSION_SECRET, resave: false, saveUninitialized: false }));

app.post("/cart/:item", (req, res) => {
  req.session.cart = [...(req.session.cart || []), req.params.item];
  res.json({ cart: req.session.cart });
});

app.listen(3000);
